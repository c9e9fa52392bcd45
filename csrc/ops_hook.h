/* ops_hook.h — an identity whose backward hands the gradient to a listener (ops_hook.c). */
#ifndef GEN_OPS_HOOK_H
#define GEN_OPS_HOOK_H

#include "gen.h"

/* The listener: given the gradient g flowing back into a grad_hook(x, key), returns the gradient
 * for x in *out (a new reference shaped like g; NULL keeps g), or -1 with an error set. */
typedef int (*gen_grad_transform_fn)(int64_t key, gen_tensor *g, gen_tensor **out);
void gen_set_grad_transform(gen_grad_transform_fn fn);

/* A view of x (same storage, shape, strides) whose backward passes the incoming gradient through
 * the listener under key; with no listener it passes it on unchanged. This is how a collective
 * becomes differentiable (gen.dist's synchronized batch norm all-reduces the gradient of the
 * all-reduced batch statistics). */
gen_tensor *gen_grad_hook(gen_tensor *x, int64_t key);

#endif
