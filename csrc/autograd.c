/* autograd.c — nodes and the backward engine (see autograd.h). */
#include "autograd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ops_arith.h"
#include "ops_shape.h"

static bool grad_enabled = true;
static _Atomic int64_t backward_counts[GEN_OP_COUNT], graph_backward_counts[GEN_OP_COUNT];
static uint64_t visit_epoch;
static bool counting_backward; /* on while gen.testing.gradcheck runs */

void gen_set_backward_counting(bool on) { counting_backward = on; }

bool gen_grad_enabled(void) { return grad_enabled; }
void gen_set_grad_enabled(bool on) { grad_enabled = on; }
int64_t gen_backward_count(gen_op op) { return (op >= 0 && op < GEN_OP_COUNT) ? atomic_load(&backward_counts[op]) : 0; }
int64_t gen_graph_backward_count(gen_op op) {
  return (op >= 0 && op < GEN_OP_COUNT) ? atomic_load(&graph_backward_counts[op]) : 0;
}

bool gen_edge_live(const gen_edge *e) { return (e->node || e->leaf) && !e->skip; }

bool gen_needs_grad(int n, gen_tensor *const *inputs) {
  if (!grad_enabled) return false;
  for (int i = 0; i < n; i++)
    if (inputs[i] && inputs[i]->requires_grad) return true;
  return false;
}

static gen_node *node_new(gen_op op, gen_backward_fn backward, int n, gen_tensor *const *inputs) {
  if (n > GEN_NODE_MAX_INPUTS) return gen_fail("internal: op %s has too many inputs", gen_op_name(op));
  gen_node *node = calloc(1, sizeof *node);
  if (!node) return gen_fail("out of memory");
  node->refcount = 1;
  node->op = op;
  node->backward = backward;
  node->n_inputs = n;
  for (int i = 0; i < n; i++) {
    gen_tensor *t = inputs[i];
    gen_edge *e = &node->edges[i];
    if (!t) continue;
    e->dtype = t->dtype;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    if (!t->requires_grad) continue;
    if (t->grad_fn) {
      e->node = t->grad_fn;
      gen_node_retain(e->node);
    } else {
      e->leaf = t;
      gen_retain(t);
    }
  }
  return node;
}

/* Keeps t alive for backward and remembers its version, to catch in-place writes in between. */
static int node_save(gen_node *node, gen_tensor *t) {
  if (node->n_saved >= GEN_NODE_MAX_SAVED) return gen_fail_int("internal: op %s saves too many tensors", gen_op_name(node->op));
  gen_retain(t);
  node->saved[node->n_saved] = t;
  node->saved_version[node->n_saved] = t->storage->version;
  node->n_saved++;
  return 0;
}

gen_tensor *gen_node_saved(gen_node *node, int i) {
  gen_tensor *t = i < node->n_saved ? node->saved[i] : NULL;
  if (!t) return gen_fail("internal: op %s has no saved tensor %d", gen_op_name(node->op), i);
  if (t->storage->version != node->saved_version[i])
    return gen_fail("a tensor saved by %s for backward was modified in place before backward() "
                    "(version %llu, saved at %llu); use an out-of-place op",
                    gen_op_name(node->op), (unsigned long long)t->storage->version, (unsigned long long)node->saved_version[i]);
  return t;
}

/* Saves an op's own output as a plain alias header over its storage (no out -> node -> out cycle). */
static int node_save_output(gen_node *node, gen_tensor *out) {
  gen_tensor *alias = gen_as_strided(out, out->ndim, out->shape, out->stride, out->offset);
  if (!alias) return -1;
  int rc = node_save(node, alias);
  gen_release(alias);
  if (rc == 0) node->saved_is_output[node->n_saved - 1] = true;
  return rc;
}

/* An alias of t's values whose grad_fn is `node` (retained): the identity a saved tensor lost. */
static gen_tensor *alias_with_identity(gen_tensor *t, gen_node *node) {
  gen_tensor *a = gen_as_strided(t, t->ndim, t->shape, t->stride, t->offset);
  if (!a) return NULL;
  gen_node_retain(node);
  a->grad_fn = node;
  a->requires_grad = true;
  return a;
}

gen_tensor *gen_node_saved_input(gen_node *node, int saved_i, int input_i) {
  gen_tensor *t = gen_node_saved(node, saved_i);
  if (!t) return NULL;
  const gen_edge *e = &node->edges[input_i];
  bool same = e->node ? t->grad_fn == e->node : (!e->leaf || t == e->leaf);
  if (same || (!e->node && !e->leaf)) { /* the input itself, or one that needs no gradient */
    gen_retain(t);
    return t;
  }
  if (e->leaf) { /* a copy of a leaf: leaf + (copy - leaf), the difference constant, keeps the
                  * values the forward read even if the leaf was stepped in place since */
    gen_tensor *d = gen_binary_raw(GEN_BIN_SUB, t, e->leaf);
    gen_tensor *r = d ? gen_add(e->leaf, d) : NULL;
    gen_release(d);
    return r;
  }
  return alias_with_identity(t, e->node);
}

/* Hands node (one reference) to out: out->grad_fn = node, out->requires_grad = true. */
static void attach(gen_tensor *out, gen_node *node) {
  if (out->grad_fn) gen_node_release(out->grad_fn);
  out->grad_fn = node;
  out->requires_grad = true;
}

/* ---- anomaly mode ---- */

static bool anomaly;
bool gen_anomaly_enabled(void) { return anomaly; }
void gen_set_anomaly_enabled(bool on) { anomaly = on; }

void gen_node_set_site(gen_node *n, const char *site) {
  free(n->site);
  n->site = strdup(site);
}

/* "NaN", "Inf" or NULL (all finite) for a float tensor's elements; NULL for other dtypes. */
static const char *nonfinite(const gen_tensor *t) {
  if (!t || !gen_dtype_is_float(t->dtype)) return NULL;
  int64_t n = gen_numel(t);
  bool inf = false;
  for (int64_t i = 0; i < n; i++) {
    double v = gen_get_flat(t, i);
    if (v != v) return "NaN";
    if (v - v != 0) inf = true;
  }
  return inf ? "Inf" : NULL;
}

/* Ops whose result holds a fill value the user chose (masked_fill with -inf masks attention). */
static bool fills_values(gen_op op) { return op == GEN_OP_MASKED_FILL; }

static int check_forward(gen_tensor *out, const gen_record_args *r) {
  if (fills_values(r->op)) return 0;
  const char *bad = nonfinite(out);
  if (!bad) return 0;
  for (int i = 0; i < r->inputs.n; i++)
    if (nonfinite(r->inputs.t[i])) return 0; /* not this op's doing */
  return gen_fail_int("anomaly: the forward of %s produced %s from finite inputs", gen_op_name(r->op), bad);
}

gen_tensor *gen_record(gen_tensor *out, const gen_record_args *r) {
  if (out && anomaly && check_forward(out, r) < 0) {
    if (r->extra) r->free_extra(r->extra);
    gen_release(out);
    return NULL;
  }
  if (!out || !gen_needs_grad(r->inputs.n, r->inputs.t)) {
    if (r->extra) r->free_extra(r->extra);
    return out;
  }
  if (r->attrs.size > GEN_NODE_ATTR_BYTES) { /* GEN_ATTRS checks this at compile time */
    if (r->extra) r->free_extra(r->extra);
    gen_release(out);
    return gen_fail("internal: op %s has too many attribute bytes", gen_op_name(r->op));
  }
  gen_node *n = node_new(r->op, r->backward, r->inputs.n, r->inputs.t);
  if (!n) {
    if (r->extra) r->free_extra(r->extra);
    gen_release(out);
    return NULL;
  }
  n->graph_backward = r->graph_backward;
  n->extra = r->extra; /* the node frees it from here on */
  n->free_extra = r->free_extra;
  if (r->attrs.size) memcpy(n->attrs, r->attrs.p, r->attrs.size);
  for (int i = 0; i < r->saved.n; i++) {
    gen_tensor *t = r->saved.t[i];
    if (t && (t == out ? node_save_output(n, t) : node_save(n, t)) < 0) {
      gen_node_release(n);
      gen_release(out);
      return NULL;
    }
  }
  attach(out, n);
  return out;
}

void gen_node_retain(gen_node *n) { n->refcount++; }

/* Drops what the node holds for backward. Edges are released too, which is what frees a chain of
 * nodes: releasing them here, iteratively, keeps a long graph from recursing deeply in free. */
static void node_free_state(gen_node *n, gen_node ***stack, size_t *len, size_t *cap) {
  for (int i = 0; i < n->n_saved; i++) {
    gen_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  if (n->extra && n->free_extra) n->free_extra(n->extra);
  n->extra = NULL;
  for (int i = 0; i < n->n_inputs; i++) {
    gen_edge *e = &n->edges[i];
    if (e->leaf) gen_release(e->leaf);
    e->leaf = NULL;
    if (e->node) {
      if (--e->node->refcount == 0) {
        if (*len == *cap) {
          size_t ncap = *cap ? *cap * 2 : 64;
          gen_node **grown = realloc(*stack, ncap * sizeof **stack);
          if (!grown) { /* fall back to recursion for this one node */
            e->node->refcount = 1;
            gen_node_release(e->node);
            e->node = NULL;
            continue;
          }
          *stack = grown;
          *cap = ncap;
        }
        (*stack)[(*len)++] = e->node;
      }
      e->node = NULL;
    }
  }
}

void gen_node_release(gen_node *n) {
  if (!n || --n->refcount > 0) return;
  gen_node **stack = NULL;
  size_t len = 0, cap = 0;
  gen_node *cur = n;
  for (;;) {
    node_free_state(cur, &stack, &len, &cap);
    gen_release(cur->grad_accum);
    free(cur->site);
    free(cur);
    if (len == 0) break;
    cur = stack[--len];
  }
  free(stack);
}

int gen_check_inplace(gen_tensor *t) {
  if (grad_enabled && t->requires_grad)
    return gen_fail_int("an in-place op would overwrite a tensor that requires grad (%s); use the "
                        "out-of-place op, or run it inside gen.no_grad",
                        t->grad_fn ? "the result of an op" : "a leaf");
  return 0;
}

/* ---- the engine ---- */

typedef struct {
  gen_node **items;
  size_t len, cap;
} node_vec;

static int vec_push(node_vec *v, gen_node *n) {
  if (v->len == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 64;
    gen_node **grown = realloc(v->items, ncap * sizeof *grown);
    if (!grown) return gen_fail_int("out of memory sorting the autograd graph");
    v->items = grown;
    v->cap = ncap;
  }
  v->items[v->len++] = n;
  return 0;
}

/* Post-order DFS with an explicit stack; `order` ends up with every node after all its consumers
 * reversed, i.e. reading it backwards is a valid reverse topological order. */
static int topo_sort_roots(int n_roots, gen_node *const *roots, node_vec *order) {
  uint64_t mark = ++visit_epoch * 2; /* mark: entered; mark+1: finished */
  node_vec stack = {0};
  int rc = 0;
  for (int r = 0; r < n_roots && rc == 0; r++) {
    if (!roots[r] || roots[r]->visit_mark == mark || roots[r]->visit_mark == mark + 1) continue;
    rc = vec_push(&stack, roots[r]);
    roots[r]->visit_mark = mark;
    while (rc == 0 && stack.len) {
      gen_node *n = stack.items[stack.len - 1];
      bool descended = false;
      for (int i = 0; i < n->n_inputs; i++) {
        gen_node *c = n->edges[i].node;
        if (c && c->visit_mark != mark && c->visit_mark != mark + 1) {
          c->visit_mark = mark;
          if ((rc = vec_push(&stack, c)) < 0) break;
          descended = true;
          break;
        }
      }
      if (rc < 0) break;
      if (!descended) {
        n->visit_mark = mark + 1;
        stack.len--;
        rc = vec_push(order, n);
      }
    }
  }
  free(stack.items);
  return rc;
}

static int topo_sort(gen_node *root, node_vec *order) { return topo_sort_roots(1, &root, order); }

static int accumulate(gen_tensor **slot, gen_tensor *g) {
  if (!*slot && g->refcount == 1 && g->storage->refcount == 1 && !g->grad_fn && gen_is_contiguous(g)) {
    /* a fresh gradient nothing else can see (no other reference, no view of its storage): adopt it */
    gen_retain(g);
    *slot = g;
    return 0;
  }
  if (!*slot) {
    /* Own a private contiguous buffer: a backward may return a view of its input gradient. */
    gen_tensor *c = gen_empty(g->dtype, g->ndim, g->shape);
    if (!c || gen_copy_raw(c, g) < 0) {
      gen_release(c);
      return -1;
    }
    *slot = c;
    return 0;
  }
  return gen_add_into(*slot, g);
}

static int check_grad_shape(gen_node *n, int i, gen_tensor *g) {
  const gen_edge *e = &n->edges[i];
  bool ok = g->ndim == e->ndim;
  for (int d = 0; ok && d < e->ndim; d++) ok = g->shape[d] == e->shape[d];
  if (ok) return 0;
  char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
  return gen_fail_int("internal: backward of %s gave a gradient of shape %s for input %d of shape %s", gen_op_name(n->op),
                      gen_shape_str(a, sizeof a, g->ndim, g->shape), i + 1, gen_shape_str(b, sizeof b, e->ndim, e->shape));
}

static gen_grad_ready_fn hook_ready;
static gen_backward_end_fn hook_end;

void gen_set_grad_hooks(gen_grad_ready_fn ready, gen_backward_end_fn end) {
  hook_ready = ready;
  hook_end = end;
}

static bool watched(const gen_edge *e) { return hook_ready && e->leaf && e->leaf->grad_hook; }

/* Counts, for every watched leaf, the edges into it from the nodes of this backward. */
static void count_hook_edges(const node_vec *order) {
  if (!hook_ready) return;
  for (size_t k = 0; k < order->len; k++)
    for (int i = 0; i < order->items[k]->n_inputs; i++)
      if (watched(&order->items[k]->edges[i])) order->items[k]->edges[i].leaf->hook_pending = 0;
  for (size_t k = 0; k < order->len; k++)
    for (int i = 0; i < order->items[k]->n_inputs; i++)
      if (watched(&order->items[k]->edges[i])) order->items[k]->edges[i].leaf->hook_pending++;
}

/* After node n ran: leaves whose last contribution it was are final. */
static int fire_hooks(gen_node *n) {
  if (!hook_ready) return 0;
  for (int i = 0; i < n->n_inputs; i++) {
    gen_edge *e = &n->edges[i];
    if (watched(e) && --e->leaf->hook_pending == 0 && hook_ready(e->leaf) < 0) return -1;
  }
  return 0;
}

/* What gen_grad asks of a sweep; NULL for backward(), which accumulates into leaves' .grad. */
typedef struct {
  bool create_graph;
  int n_in;
  gen_tensor *const *inputs;
  gen_tensor **results;
} grad_request;

/* Under create_graph, sums are recorded ops: the gradient keeps its history. */
static int accumulate_graph(gen_tensor **slot, gen_tensor *g) {
  if (!*slot) {
    gen_retain(g);
    *slot = g;
    return 0;
  }
  gen_tensor *sum = gen_add(*slot, g);
  if (!sum) return -1;
  gen_release(*slot);
  *slot = sum;
  return 0;
}

static gen_tensor **leaf_slot(const grad_request *req, gen_tensor *leaf) {
  for (int j = 0; j < req->n_in; j++)
    if (req->inputs[j] == leaf) return &req->results[j];
  return NULL;
}

/* Runs n's backward (its graph_backward under create_graph), with the aliases of its own saved
 * result swapped for ones that carry the node's identity while it runs. */
static int call_backward(gen_node *n, gen_tensor *g, gen_tensor **grad_in, const grad_request *req) {
  if (!req || !req->create_graph) return n->backward(n, g, grad_in);
  gen_tensor *plain[GEN_NODE_MAX_SAVED] = {0};
  int rc = 0;
  for (int i = 0; i < n->n_saved && rc == 0; i++) {
    if (!n->saved_is_output[i] || !n->saved[i]) continue;
    gen_tensor *a = alias_with_identity(n->saved[i], n);
    if (!a) {
      rc = -1;
      break;
    }
    plain[i] = n->saved[i];
    n->saved[i] = a;
  }
  if (rc == 0) rc = n->graph_backward(n, g, grad_in);
  if (counting_backward) atomic_fetch_add(&graph_backward_counts[n->op], 1);
  for (int i = 0; i < n->n_saved; i++) {
    if (!plain[i]) continue;
    gen_release(n->saved[i]);
    n->saved[i] = plain[i];
  }
  return rc;
}

static int run_node(gen_node *n, const grad_request *req) {
  if (n->released)
    return gen_fail_int("backward through the graph a second time: its saved tensors were freed by "
                        "the first backward() (op %s); pass retain_graph = true to the first call",
                        gen_op_name(n->op));
  bool graph = req && req->create_graph;
  gen_tensor *grad_in[GEN_NODE_MAX_INPUTS] = {0};
  gen_tensor *g = n->grad_accum;
  n->grad_accum = NULL;
  int rc = g ? call_backward(n, g, grad_in, req) : 0;
  if (counting_backward) atomic_fetch_add(&backward_counts[n->op], 1);
  if (rc == 0 && anomaly && !nonfinite(g)) {
    for (int i = 0; i < n->n_inputs && rc == 0; i++) {
      const char *bad = gen_edge_live(&n->edges[i]) ? nonfinite(grad_in[i]) : NULL;
      if (bad)
        rc = gen_fail_int("anomaly: the backward of %s (created at %s) produced %s in the gradient of input %d from a finite "
                          "gradient",
                          gen_op_name(n->op), n->site ? n->site : "an unknown site", bad, i + 1);
    }
  }
  for (int i = 0; i < n->n_inputs && rc == 0; i++) {
    gen_edge *e = &n->edges[i];
    if (!grad_in[i] || !gen_edge_live(e)) continue;
    if ((rc = check_grad_shape(n, i, grad_in[i])) < 0) break;
    if (grad_in[i]->dtype != e->dtype) { /* e.g. a float32 input of a float64 op */
      gen_tensor *c = graph ? gen_to_dtype(grad_in[i], e->dtype) : gen_to_dtype_raw(grad_in[i], e->dtype);
      if (!c) {
        rc = -1;
        break;
      }
      gen_release(grad_in[i]);
      grad_in[i] = c;
    }
    gen_tensor **slot = e->leaf ? (req ? leaf_slot(req, e->leaf) : &e->leaf->grad) : &e->node->grad_accum;
    if (!slot) continue; /* not asked for (pruned edges never get here) */
    rc = graph ? accumulate_graph(slot, grad_in[i]) : accumulate(slot, grad_in[i]);
  }
  for (int i = 0; i < n->n_inputs; i++) gen_release(grad_in[i]);
  gen_release(g);
  return rc == 0 && !req ? fire_hooks(n) : rc;
}

/* Frees what a node kept for its backward: the graph cannot run it again. */
static void release_saved(gen_node *n) {
  for (int i = 0; i < n->n_saved; i++) {
    gen_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  if (n->extra && n->free_extra) n->free_extra(n->extra);
  n->extra = NULL;
  n->released = true;
}

int gen_backward(gen_tensor *root, gen_tensor *grad, bool retain_graph) {
  if (!root->requires_grad) return gen_fail_int("the tensor does not require grad and has no grad_fn");
  gen_tensor *seed;
  if (grad) {
    if (!gen_same_shape(grad, root)) {
      char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
      return gen_fail_int("gradient of shape %s for a tensor of shape %s", gen_shape_str(a, sizeof a, grad->ndim, grad->shape),
                          gen_shape_str(b, sizeof b, root->ndim, root->shape));
    }
    seed = gen_to_dtype_raw(grad, root->dtype);
  } else {
    if (gen_numel(root) != 1) {
      char a[GEN_SHAPE_STR_MAX];
      return gen_fail_int("backward() of a tensor of shape %s needs a gradient argument (only a "
                          "one-element tensor gets the implicit gradient 1)",
                          gen_shape_str(a, sizeof a, root->ndim, root->shape));
    }
    seed = gen_full(root->dtype, root->ndim, root->shape, 1.0);
  }
  if (!seed) return -1;
  if (!root->grad_fn) { /* a leaf: backward just accumulates the seed */
    int rc = accumulate(&root->grad, seed);
    gen_release(seed);
    if (rc == 0 && hook_ready && root->grad_hook) rc = hook_ready(root);
    if (hook_end && hook_end(rc == 0) < 0) rc = -1;
    return rc;
  }
  node_vec order = {0};
  if (topo_sort(root->grad_fn, &order) < 0) {
    gen_release(seed);
    free(order.items);
    return -1;
  }
  bool saved_mode = grad_enabled;
  grad_enabled = false;
  root->grad_fn->grad_accum = seed;
  count_hook_edges(&order);
  int rc = 0;
  for (size_t k = order.len; k-- > 0 && rc == 0;) rc = run_node(order.items[k], NULL);
  grad_enabled = saved_mode;
  /* Free saved state (also after an error, so a failed backward does not pin memory). */
  for (size_t k = 0; k < order.len; k++) {
    gen_node *n = order.items[k];
    gen_release(n->grad_accum);
    n->grad_accum = NULL;
    if (!retain_graph) release_saved(n);
  }
  free(order.items);
  if (hook_end && hook_end(rc == 0) < 0) rc = -1;
  return rc;
}

/* ---- gen_grad ---- */

static bool is_input_leaf(int n_in, gen_tensor *const *inputs, const gen_tensor *leaf) {
  for (int j = 0; j < n_in; j++)
    if (inputs[j] == leaf) return true;
  return false;
}

/* The seed of output i: its grad_output (converted to its dtype), or 1 for a one-element output. */
static gen_tensor *seed_of(gen_tensor *out, gen_tensor *go, int i, bool create_graph) {
  if (go) {
    if (!gen_same_shape(go, out)) {
      char a[GEN_SHAPE_STR_MAX], b[GEN_SHAPE_STR_MAX];
      return gen_fail("grad_outputs[%d] has shape %s but output %d has shape %s", i + 1,
                      gen_shape_str(a, sizeof a, go->ndim, go->shape), i + 1, gen_shape_str(b, sizeof b, out->ndim, out->shape));
    }
    if (go->dtype == out->dtype) {
      gen_retain(go);
      return go;
    }
    return create_graph ? gen_to_dtype(go, out->dtype) : gen_to_dtype_raw(go, out->dtype);
  }
  if (gen_numel(out) != 1) {
    char a[GEN_SHAPE_STR_MAX];
    return gen_fail("output %d has shape %s: it needs grad_outputs (only a one-element output gets the implicit 1)", i + 1,
                    gen_shape_str(a, sizeof a, out->ndim, out->shape));
  }
  return gen_full(out->dtype, out->ndim, out->shape, 1.0);
}

int gen_grad(int n_out, gen_tensor *const *outputs, gen_tensor *const *grad_outputs, int n_in, gen_tensor *const *inputs,
             bool create_graph, bool retain_graph, gen_tensor **results, bool *used) {
  for (int j = 0; j < n_in; j++) {
    results[j] = NULL;
    used[j] = false;
    if (!inputs[j]->requires_grad) return gen_fail_int("input %d does not require grad", j + 1);
  }
  for (int i = 0; i < n_out; i++)
    if (!outputs[i]->requires_grad) return gen_fail_int("output %d does not require grad and has no grad_fn", i + 1);
  if (n_out < 1) return gen_fail_int("needs at least one output");
  gen_node **roots = calloc((size_t)n_out, sizeof *roots);
  if (!roots) return gen_fail_int("out of memory");
  for (int i = 0; i < n_out; i++) roots[i] = outputs[i]->grad_fn;
  node_vec order = {0};
  int rc = topo_sort_roots(n_out, roots, &order);
  free(roots);
  bool saved_mode = grad_enabled;
  grad_request req = {create_graph, n_in, inputs, results};
  if (rc < 0) goto done;
  /* Which nodes lead to an input (children come first in `order`), and which edges to prune. */
  for (size_t k = 0; k < order.len; k++) order.items[k]->target = false;
  for (int j = 0; j < n_in; j++)
    if (inputs[j]->grad_fn) inputs[j]->grad_fn->target = true;
  for (size_t k = 0; k < order.len; k++) {
    gen_node *n = order.items[k];
    n->reach = false;
    for (int i = 0; i < n->n_inputs; i++) {
      gen_edge *e = &n->edges[i];
      bool leads = e->node ? (e->node->reach || e->node->target) : (e->leaf && is_input_leaf(n_in, inputs, e->leaf));
      e->skip = !leads;
      n->reach |= leads;
    }
  }
  for (int j = 0; j < n_in; j++) { /* used: reached from an output */
    if (inputs[j]->grad_fn) {
      gen_node *t = inputs[j]->grad_fn;
      used[j] = t->visit_mark == visit_epoch * 2 + 1;
    }
    for (int i = 0; i < n_out && !used[j]; i++) used[j] = outputs[i] == inputs[j];
    for (size_t k = 0; k < order.len && !used[j]; k++)
      for (int i = 0; i < order.items[k]->n_inputs; i++)
        if (order.items[k]->edges[i].leaf == inputs[j]) used[j] = true;
  }
  if (create_graph) {
    for (size_t k = 0; k < order.len; k++) {
      gen_node *n = order.items[k];
      if (n->reach && !n->graph_backward) {
        rc = gen_fail_int("create_graph is not supported through %s", gen_op_name(n->op));
        goto done;
      }
    }
  }
  /* Seeds: an output that is itself an input (a leaf) takes its seed directly. */
  for (int i = 0; i < n_out && rc == 0; i++) {
    gen_tensor *s = seed_of(outputs[i], grad_outputs ? grad_outputs[i] : NULL, i, create_graph);
    if (!s) {
      rc = -1;
      break;
    }
    gen_tensor **slot = outputs[i]->grad_fn ? &outputs[i]->grad_fn->grad_accum : leaf_slot(&req, outputs[i]);
    if (slot) rc = create_graph ? accumulate_graph(slot, s) : accumulate(slot, s);
    gen_release(s);
  }
  grad_enabled = create_graph;
  for (size_t k = order.len; k-- > 0 && rc == 0;) {
    gen_node *n = order.items[k];
    if (n->target) /* its gradient is complete: every consumer ran before it */
      for (int j = 0; j < n_in; j++)
        if (inputs[j]->grad_fn == n && n->grad_accum) {
          gen_retain(n->grad_accum);
          results[j] = n->grad_accum;
        }
    if (!n->reach) {
      gen_release(n->grad_accum);
      n->grad_accum = NULL;
      continue;
    }
    rc = run_node(n, &req);
    if (rc == 0 && !retain_graph) release_saved(n);
  }
  for (int j = 0; j < n_in && rc == 0; j++) /* an input given twice gets its gradient twice */
    for (int k = 0; k < j && !results[j]; k++)
      if (inputs[k] == inputs[j] && results[k]) {
        gen_retain(results[k]);
        results[j] = results[k];
      }
done:
  grad_enabled = saved_mode;
  for (size_t k = 0; k < order.len; k++) {
    gen_node *n = order.items[k];
    gen_release(n->grad_accum);
    n->grad_accum = NULL;
    for (int i = 0; i < n->n_inputs; i++) n->edges[i].skip = false;
  }
  free(order.items);
  if (rc < 0)
    for (int j = 0; j < n_in; j++) {
      gen_release(results[j]);
      results[j] = NULL;
    }
  return rc;
}

gen_tensor *gen_arena_keep(gen_arena *a, gen_tensor *t) {
  if (t && a->n == GEN_ARENA_MAX) {
    gen_release(t);
    t = gen_fail("internal: a backward holds more than %d temporaries", GEN_ARENA_MAX);
  }
  if (!t) {
    a->failed = true;
    return NULL;
  }
  a->t[a->n++] = t;
  return t;
}

void gen_arena_free(gen_arena *a) {
  for (int i = 0; i < a->n; i++) gen_release(a->t[i]);
  a->n = 0;
}

gen_tensor *gen_arena_take(gen_arena *a, gen_tensor *t) {
  if (a->failed) t = NULL;
  if (t) gen_retain(t);
  gen_arena_free(a);
  return t;
}
