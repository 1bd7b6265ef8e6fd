// Host-side helpers that the plugin ABI header must not carry.
#ifndef FERRY_HOST_H
#define FERRY_HOST_H
#include <stdint.h>

// The cancel flag plugins read with ferry_is_cancelled(); written atomically.
static inline void ferry_host_store_flag(int32_t *flag, int32_t value) {
    __atomic_store_n(flag, value, __ATOMIC_RELAXED);
}
static inline int32_t ferry_host_load_flag(const int32_t *flag) {
    return __atomic_load_n(flag, __ATOMIC_RELAXED);
}
#endif
