// Includes Catch2 whichever major version the build found (2.x on Debian 12, 3.x elsewhere).
#pragma once
#ifdef RUNLLM_CATCH2_V3
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
