#include <cstdio>
int main() { std::puts("run-llm"); return 0; }
