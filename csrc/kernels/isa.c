/* isa.c — see isa.h. */
#include "isa.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if GEN_ISA_X86
#include <cpuid.h>

/* XCR0: which register state the OS saves on a context switch. Without the YMM (bit 2) or the
 * opmask and ZMM bits (5-7), the instructions exist but the OS would lose the registers. */
static uint64_t xcr0(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t)hi << 32 | lo;
}

static gen_isa_level detect(void) {
  __builtin_cpu_init();
  uint64_t x = xcr0();
  bool ymm = (x & 0x6) == 0x6, zmm = ymm && (x & 0xe0) == 0xe0;
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                __builtin_cpu_supports("avx512dq");
  return avx2 && avx512 && zmm ? GEN_ISA_AVX512 : avx2 && ymm ? GEN_ISA_AVX2 : GEN_ISA_GENERIC;
}
#else
static gen_isa_level detect(void) { return GEN_ISA_GENERIC; }
#endif

static const char *const names[GEN_ISA_COUNT] = {"generic", "avx2", "avx512"};

/* -1 until known; every kernel call reads it, so it is a plain int set before any runs */
static int current = -1, best = -1;

gen_isa_level gen_isa_best(void) {
  if (best < 0) best = (int)detect();
  return (gen_isa_level)best;
}

gen_isa_level gen_isa(void) {
  if (current < 0) current = (int)gen_isa_best();
  return (gen_isa_level)current;
}

const char *gen_isa_name(gen_isa_level level) { return level >= 0 && level < GEN_ISA_COUNT ? names[level] : "unknown"; }

const char *gen_isa_init(void) {
  static char msg[160];
  gen_isa_level top = gen_isa_best();
  current = (int)top;
  const char *want = getenv("GEN_ISA");
  if (!want || !*want) return NULL;
  for (int l = 0; l < GEN_ISA_COUNT; l++)
    if (!strcmp(want, names[l])) {
      if (l > (int)top) {
        snprintf(msg, sizeof msg, "GEN_ISA=%s, but this CPU supports at most %s", want, names[top]);
        return msg;
      }
      current = l;
      return NULL;
    }
  snprintf(msg, sizeof msg, "GEN_ISA must be avx512, avx2 or generic (or unset), got '%.40s'", want);
  return msg;
}
