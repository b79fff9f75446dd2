int probelib_answer(void) { return 42; }
