/* ops_hook.c — grad_hook: forward y = x (a view), backward dx = listener(key, dy).
 *
 * The listener is one function for the process (the binding dispatches on key to Lua functions,
 * see bind_hooks.c). Forward and backward are side by side as for every op; the "kernel" is the
 * listener, so the gradient check runs it with the identity. */
#include "ops_hook.h"

#include "autograd.h"

static gen_grad_transform_fn transform;

void gen_set_grad_transform(gen_grad_transform_fn fn) { transform = fn; }

typedef struct {
  int64_t key;
} hook_attrs;

static int grad_hook_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in) {
  const hook_attrs *at = GEN_NODE_ATTRS(n, hook_attrs);
  gen_tensor *out = NULL;
  if (transform && transform(at->key, g, &out) < 0) return -1;
  if (!out) {
    gen_retain(g);
    out = g;
  }
  grad_in[0] = out;
  return 0;
}

gen_tensor *gen_grad_hook(gen_tensor *x, int64_t key) {
  gen_tensor *out = gen_as_strided(x, x->ndim, x->shape, x->stride, x->offset);
  hook_attrs at = {key};
  return gen_record(
      out, &(gen_record_args){
               .op = GEN_OP_GRAD_HOOK, .backward = grad_hook_backward, .inputs = GEN_TENSORS(x), .attrs = GEN_ATTRS(&at)});
}
