import Glibc

/// Whether this test process runs under AddressSanitizer (`swift test
/// --sanitize=address`). The LD_PRELOAD allocation counter is then built
/// with ASan too and preloaded into programs that do not load ASan's
/// runtime first (they exit 127), and ASan's own malloc replaces the one it
/// would count: what those tests check cannot be seen under ASan.
let underAddressSanitizer = dlsym(nil, "__asan_init") != nil

let allocationCountingNeedsPlainMalloc =
    "the LD_PRELOAD allocation counter cannot count under AddressSanitizer (it replaces malloc itself)"
