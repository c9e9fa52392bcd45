/* fastmath.h — branch-free float32 e^x and ln x that vectorize, shared by the attention,
 * activation and loss kernels, where libm's scalar functions otherwise cost more than the GEMMs
 * around them.
 *
 * A file including this should compile with -fno-trapping-math semantics (see attention.c):
 * GCC only if-converts the clamp, and so vectorizes the loops, when a speculated float multiply
 * may not trap. */
#ifndef GEN_KERNELS_FASTMATH_H
#define GEN_KERNELS_FASTMATH_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Hot elementwise loops get an AVX2+FMA clone beside the baseline x86-64 one, chosen once at load
 * time (an ifunc), so one build runs everywhere and uses 8-wide vectors where the CPU has them. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define GEN_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define GEN_SIMD_CLONES
#endif

/* e^x for x <= 88, within 1e-7 relative down to e^-87, and exactly 0 below about -87.7, where
 * the exponent bits reach 0 (so -inf gives 0; NaN stays NaN). Cephes' expf: x = n ln2 + r with
 * |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n through the exponent bits. */
static inline float gen_exp_approx(float x) {
  float xc = x < -88.0f ? -88.0f : x;                                /* n = -127: scale 0 */
  float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  float ni = n == n ? n : 0.0f; /* NaN must not reach the integer conversion; p is NaN already */
  uint32_t bits = (uint32_t)((int32_t)ni + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/* ln x for finite x > 0 with a normal exponent, within 2e-7 relative: x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), ln(m) by Cephes' logf polynomial, selects instead of branches. */
static inline float gen_log_approx(float x) {
  uint32_t bits;
  memcpy(&bits, &x, sizeof bits);
  int32_t e = (int32_t)((bits >> 23) & 0xffu) - 126;
  bits = (bits & 0x807fffffu) | 0x3f000000u; /* m in [1/2, 1) */
  float m;
  memcpy(&m, &bits, sizeof m);
  bool small = m < 0.707106781186547524f;
  e -= small;
  m = small ? m + m - 1.0f : m - 1.0f;
  float z = m * m, fe = (float)e;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z - 2.12194440e-4f * fe - 0.5f * z;
  return m + y + 0.693359375f * fe;
}

/* ln(1 + e) for e in [0, 1]: ln of the rounded u = 1 + e, corrected by the rounding error of u
 * (so tiny e give e, not 0). */
static inline float gen_log1p_unit_approx(float e) {
  float u = 1.0f + e;
  return gen_log_approx(u) - ((u - 1.0f) - e) / u;
}

/* 1 / (1 + e^-x) through e^-|x| <= 1, which never overflows; NaN stays NaN. */
static inline float gen_sigmoid_approx(float x) {
  float e = gen_exp_approx(-fabsf(x)), s = 1.0f / (1.0f + e);
  return x >= 0 ? s : e * s;
}

/* For GELU: the pair (1 + erf(x / sqrt 2), e^(-x^2 / 2)), branch-free. Abramowitz & Stegun 7.1.26:
 * erfc(z) = t (a1 + t (a2 + ... + t a5)) e^(-z^2), t = 1 / (1 + p z), z = |x| / sqrt 2 >= 0, within
 * 1.5e-7 absolute. 1 + erf(x) is erfc(|z|) for x < 0 (no cancellation: GELU's left tail keeps its
 * relative accuracy) and 2 - erfc(z) for x >= 0. NaN stays NaN. */
static inline float gen_one_plus_erf_approx(float x, float *gauss) {
  float z = fabsf(x) * 0.70710678118654752f;
  float e = gen_exp_approx(-z * z); /* e^(-x^2 / 2) */
  float t = 1.0f / (1.0f + 0.3275911f * z);
  float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  float erfc = poly * e;
  *gauss = e;
  return x >= 0 ? 2.0f - erfc : erfc;
}

/* tanh x, within 2e-7 relative: Cephes' tanhf, x + x^3 P(x^2) for |x| < 0.625, where 1 - 2 / (e^2|x| + 1)
 * would lose the small values to cancellation, that form beyond (saturating to +-1, no overflow). */
static inline float gen_tanh_approx(float x) {
  float a = fabsf(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (gen_exp_approx(a > 44.0f ? 88.0f : a + a) + 1.0f);
  return a < 0.625f ? small : copysignf(big, x);
}

#endif
