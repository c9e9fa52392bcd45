/*
 * bind.h — the thin layer between Lua and the C core. Only csrc/bind/ includes lua.h.
 *
 * Discipline (lauxlib's): validate every argument before allocating anything; every tensor the
 * core returns goes straight into a Lua-owned slot (a userdata with __gc), pushed *before* the core
 * call, so a later luaL_error (a longjmp over our C frames) cannot leak it:
 *
 *     gen_tensor *a = bind_tensor(L, 1, "gen.exp");
 *     gen_tensor **slot = bind_slot(L);
 *     *slot = gen_exp(a);
 *     return bind_result(L, *slot, "gen.exp");    -- raises "gen.exp: <core message>" on NULL
 *
 * Dimensions and indices arrive 1-based (negative counts from the end) and are converted to
 * 0-based here, in bind_dim / bind_index, and nowhere else.
 */
#ifndef GEN_BIND_H
#define GEN_BIND_H

#include <lauxlib.h>
#include <lua.h>

#include "../gen.h"

#define GEN_TENSOR_MT    "gen.Tensor"
#define GEN_GENERATOR_MT "gen.Generator"

/* Raises "fname: message" (formatted before raising, nothing left to free). */
int bind_error(lua_State *L, const char *fname, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
/* Raises "fname: " + gen_last_error(). */
int bind_core_error(lua_State *L, const char *fname) __attribute__((noreturn));

gen_tensor *bind_totensor(lua_State *L, int idx); /* NULL when not a tensor */
gen_tensor *bind_tensor(lua_State *L, int idx, const char *fname);
gen_tensor *bind_opt_tensor(lua_State *L, int idx, const char *fname); /* nil/none -> NULL */
/* A tensor, or a number turned into a 0-d tensor whose dtype suits `like` (like may be NULL). The
 * number's tensor is owned by a slot pushed on the stack. */
gen_tensor *bind_operand(lua_State *L, int idx, const gen_tensor *like, const char *fname);

/* Pushes an empty tensor userdata and returns its slot. */
gen_tensor **bind_slot(lua_State *L);
/* t is the value just stored in the top slot: raises on NULL, else paces the collector and
 * returns 1 (the slot is the result). */
int bind_result(lua_State *L, gen_tensor *t, const char *fname);
/* Wraps an owned reference t in a new userdata (for results the core made before any slot). */
void bind_push_owned(lua_State *L, gen_tensor *t);
/* Tell Lua's collector about C bytes allocated since the last call (called by bind_result). */
void bind_pace_gc(lua_State *L);
/* Bytes of tensor allocation after which bind_pace_gc runs the next full collection. */
int64_t bind_gc_threshold(void);

/* 1-based (or negative) dim at idx -> 0-based for a tensor of ndim dims (ndim 0 accepts 1/-1). */
int bind_dim(lua_State *L, int idx, int ndim, const char *fname);
int bind_dim_value(lua_State *L, lua_Integer d, int ndim, const char *fname);
/* 1-based (or negative) index into a dim of size n -> 0-based. */
int64_t bind_index(lua_State *L, lua_Integer i, int64_t n, const char *fname);
/* A shape from a table at idx, or from integers at idx..top. Returns ndim. */
int bind_shape(lua_State *L, int idx, int64_t *shape, const char *fname);
/* Same, but the table or varargs may contain one -1 (returned as -1 for the caller to infer). */
int bind_shape_infer(lua_State *L, int idx, int64_t *shape, const char *fname);
/* An optional dtype name at idx (nil -> dflt). */
gen_dtype bind_dtype(lua_State *L, int idx, gen_dtype dflt, const char *fname);
/* Options tables: read a field with a default; type errors name the field. */
lua_Integer bind_opt_int_field(lua_State *L, int idx, const char *field, lua_Integer dflt, const char *fname);
lua_Number bind_opt_num_field(lua_State *L, int idx, const char *field, lua_Number dflt, const char *fname);
int bind_opt_bool_field(lua_State *L, int idx, const char *field, int dflt, const char *fname);
/* A pair of ints from a field that may be a number or a {a, b} table (kernel size, stride ...). */
void bind_opt_pair_field(lua_State *L, int idx, const char *field, lua_Integer dflt, int64_t out[2], const char *fname);
/* The generator passed as {generator = g} in the options table at idx (or the default). */
gen_generator *bind_generator_opt(lua_State *L, int idx, const char *fname);

/* Each op family registers its functions into the table on top of the stack: bind_X.c binds
 * ops_X.c (bind_tensor, bind_io, bind_file, bind_optim, bind_signal bind the non-op areas).
 * Methods and gen.* functions are the same C functions; lua/gen/init.lua decides which names
 * become methods. */
void bind_register_tensor(lua_State *L);
void bind_register_arith(lua_State *L);
void bind_register_reduce(lua_State *L);
void bind_register_sort(lua_State *L);
void bind_register_matmul(lua_State *L);
void bind_register_linalg(lua_State *L);
void bind_register_unary(lua_State *L);
void bind_register_shape(lua_State *L);
void bind_register_index(lua_State *L);
void bind_register_linear(lua_State *L);
void bind_register_conv(lua_State *L);
void bind_register_pool(lua_State *L);
void bind_register_norm(lua_State *L);
void bind_register_loss(lua_State *L);
void bind_register_attention(lua_State *L);
void bind_register_quantize(lua_State *L);
void bind_register_io(lua_State *L);
void bind_register_optim(lua_State *L);
void bind_register_file(lua_State *L);
void bind_register_signal(lua_State *L);
void bind_register_hooks(lua_State *L);
/* gen.config; it also decides the ISA level (GEN_ISA), so it is registered first */
void bind_register_config(lua_State *L);
/* t:backward() names its thread before the engine runs, for the gradient hooks (bind_hooks.c). */
void bind_hooks_enter(lua_State *L);

#endif
