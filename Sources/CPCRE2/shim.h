// PCRE2 for Swift: the 8-bit code unit width must be chosen before the
// header is included, and PCRE2_ZERO_TERMINATED is not importable.
#ifndef FERRY_CPCRE2_SHIM_H
#define FERRY_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif
