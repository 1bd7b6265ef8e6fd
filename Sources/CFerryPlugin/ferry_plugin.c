// The ABI target is header-only; compiling this file runs the header's
// _Static_assert layout pins on every build.
#include "ferry_plugin.h"
