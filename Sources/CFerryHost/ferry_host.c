#include "ferry_host.h"
