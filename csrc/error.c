/* error.c — the core's error channel: a thread-local message, set by failing functions. */
#include <stdarg.h>
#include <stdio.h>

#include "gen.h"

static _Thread_local char last_error[1024];

const char *gen_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

static void set_error(const char *fmt, va_list ap) { vsnprintf(last_error, sizeof last_error, fmt, ap); }

void *gen_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error(fmt, ap);
  va_end(ap);
  return NULL;
}

int gen_fail_int(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_error(fmt, ap);
  va_end(ap);
  return -1;
}

const char *gen_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, n, "{");
  for (int d = 0; d < ndim && used < n; d++)
    used += (size_t)snprintf(buf + used, n - used, d ? ",%lld" : "%lld", (long long)shape[d]);
  if (used < n) snprintf(buf + used, n - used, "}");
  return buf;
}
