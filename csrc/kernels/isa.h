/*
 * isa.h — the instruction-set level gen's kernels run at, decided once when gen.core loads.
 *
 * Levels: GEN_ISA_AVX512 (AVX-512 F, BW, VL and DQ, with the OS saving ZMM state), GEN_ISA_AVX2
 * (AVX2 and FMA, with the OS saving YMM state), GEN_ISA_GENERIC (baseline x86-64, or any other
 * CPU). The environment variable GEN_ISA=avx512|avx2|generic forces a level at or below the CPU's
 * best, for testing and measuring one against another.
 *
 * One build runs on every x86-64: kernels of a higher level carry GEN_TARGET_AVX2 / _AVX512 function
 * attributes and are only called when gen_isa() says so. GEN_ISA_KERNEL compiles one source body
 * (a static inline function) once per level and dispatches on gen_isa(): the loops the compiler
 * vectorizes get 16-wide vectors where the CPU has them, without hand-written copies.
 */
#ifndef GEN_KERNELS_ISA_H
#define GEN_KERNELS_ISA_H

#include <stdbool.h>

typedef enum { GEN_ISA_GENERIC, GEN_ISA_AVX2, GEN_ISA_AVX512, GEN_ISA_COUNT } gen_isa_level;

/* The level in use (the CPU's best until gen_isa_init has run). */
gen_isa_level gen_isa(void);
/* The best level this CPU and OS support. */
gen_isa_level gen_isa_best(void);
const char *gen_isa_name(gen_isa_level level);
/* Decides the level from the CPU and GEN_ISA. Returns NULL, or (GEN_ISA unknown or above the CPU's
 * best) a message for the caller to raise; the level then stays the CPU's best. */
const char *gen_isa_init(void);

/* A kernel body for GEN_ISA_KERNEL: inlined into every per-level copy. */
#define GEN_ISA_BODY static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define GEN_ISA_X86     1
#define GEN_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe")))
#define GEN_TARGET_AVX512                                                                                                        \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512cd,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe")))
/* Defines `static RET NAME PARAMS` running NAME##_body ARGS compiled for the level in use; the body
 * is a `static inline` function (inlined into each per-level copy, which is what vectorizes it). */
#define GEN_ISA_KERNEL(RET, NAME, PARAMS, ARGS)                                                                                  \
  GEN_TARGET_AVX512 static RET NAME##_avx512 PARAMS { return NAME##_body ARGS; }                                                 \
  GEN_TARGET_AVX2 static RET NAME##_avx2 PARAMS { return NAME##_body ARGS; }                                                     \
  static RET NAME##_generic PARAMS { return NAME##_body ARGS; }                                                                  \
  static RET NAME PARAMS {                                                                                                       \
    switch (gen_isa()) {                                                                                                         \
    case GEN_ISA_AVX512: return NAME##_avx512 ARGS;                                                                              \
    case GEN_ISA_AVX2: return NAME##_avx2 ARGS;                                                                                  \
    default: return NAME##_generic ARGS;                                                                                         \
    }                                                                                                                            \
  }
#else
#define GEN_ISA_X86 0
#define GEN_ISA_KERNEL(RET, NAME, PARAMS, ARGS)                                                                                  \
  static RET NAME PARAMS { return NAME##_body ARGS; }
#endif

#endif
