/*
 * mpi.c — gen.mpi, the collectives gen.dist is built on (lua/gen/dist.lua), over MPI.
 *
 * Its own shared object (build/gen/mpi.so), built only where mpicc exists, so gen itself never
 * needs MPI. It sees tensors only through their userdata ("gen.Tensor", a gen_tensor **) and the
 * struct in gen.h: it calls nothing in gen.core, and Lua allocates every result before the call
 * (all_gather's output, reduce_scatter's chunk), so an error here has nothing to free.
 *
 * Every collective is started non-blocking and then waited on by polling (MPI_Test, yielding the
 * CPU between tests) with a deadline: a rank that died or stopped calling collectives turns into a
 * Lua error naming the waiting rank after `timeout` seconds instead of a hang, and waiting ranks
 * do not spin on a core another rank needs (this machine runs two ranks on two cores).
 *
 * Open MPI advances a non-blocking collective only inside MPI calls, so a reduction started during
 * backward would otherwise sit still until the next test or wait. When MPI grants
 * MPI_THREAD_MULTIPLE, a progress thread makes those calls while requests returned by iall_reduce
 * and iall_gather are in flight (an MPI_Iprobe on a private communicator every 50 us, which runs
 * Open MPI's progress engine, libnbc's schedules included) and sleeps on a condition variable
 * otherwise. GEN_DIST_PROGRESS=0 (or init's second argument false) turns it off.
 *
 *   init(timeout, progress) -> rank, size
 *   progress_thread() -> whether the progress thread runs
 *   rank() size() initialized() set_timeout(s) abort(code, message) finalize()
 *   barrier()
 *   all_reduce(t, op)                in place; op "sum" | "mean" | "max"
 *   broadcast(t, root)               in place from rank root (0-based, as MPI numbers ranks)
 *   all_gather(out, t)               out holds size() copies of t's shape, rank order
 *   reduce_scatter(out, t, op)       t split in size() equal parts along its first dimension; out
 *                                    gets this rank's part of the reduction
 *   iall_reduce(t, op), iall_gather(out, t) -> request with :wait() and :test()
 *
 * Tensors must be contiguous; dtypes float32, float64, int64, uint8 ("mean" needs a float).
 */
#include <lauxlib.h>
#include <lua.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../gen.h"

#define TENSOR_MT  "gen.Tensor"
#define REQUEST_MT "gen.mpi.Request"

static double timeout_s = 300.0;
static int world_rank, world_size;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int active(void) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

static int fail(lua_State *L, const char *fname, const char *fmt, ...) __attribute__((format(printf, 3, 4), noreturn));
static int fail(lua_State *L, const char *fname, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  luaL_error(L, "%s: %s", fname, msg);
  abort(); /* not reached: luaL_error does not return */
}

static void need_active(lua_State *L, const char *fname) {
  if (!active()) fail(L, fname, "MPI is not running (call gen.dist.init() first)");
}

static void check_rc(lua_State *L, int rc, const char *fname) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail(L, fname, "MPI error: %.*s", len, msg);
}

/* ---- tensors ---- */

static const char *dtype_name(gen_dtype dt) {
  static const char *names[] = {"float32", "float64", "int64", "uint8"};
  return dt >= 0 && dt < GEN_DTYPE_COUNT ? names[dt] : "unknown";
}
static size_t dtype_size(gen_dtype dt) { return dt == GEN_FLOAT64 || dt == GEN_INT64 ? 8 : dt == GEN_FLOAT32 ? 4 : 1; }
static MPI_Datatype mpi_type(gen_dtype dt) {
  switch (dt) {
  case GEN_FLOAT32: return MPI_FLOAT;
  case GEN_FLOAT64: return MPI_DOUBLE;
  case GEN_INT64: return MPI_INT64_T;
  default: return MPI_UINT8_T;
  }
}

static int64_t numel(const gen_tensor *t) {
  int64_t n = 1;
  for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
  return n;
}

static int contiguous(const gen_tensor *t) {
  int64_t expect = 1;
  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != expect) return 0;
    expect *= t->shape[d];
  }
  return 1;
}

static void *data(const gen_tensor *t) { return (char *)t->storage->data + (size_t)t->offset * dtype_size(t->dtype); }

static void shape_str(char *buf, size_t n, const gen_tensor *t) {
  size_t k = (size_t)snprintf(buf, n, "{");
  for (int d = 0; d < t->ndim && k < n; d++) k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)t->shape[d]);
  if (k < n) snprintf(buf + k, n - k, "}");
}

/* A contiguous tensor argument that fits one MPI count; written in place when `written`. */
static gen_tensor *tensor_arg(lua_State *L, int idx, const char *fname, int written) {
  gen_tensor **p = luaL_testudata(L, idx, TENSOR_MT);
  if (!p || !*p) fail(L, fname, "argument %d: expected a tensor, got %s", idx, luaL_typename(L, idx));
  gen_tensor *t = *p;
  char s[160];
  shape_str(s, sizeof s, t);
  if (!contiguous(t)) fail(L, fname, "argument %d: the tensor %s is not contiguous (call :contiguous() first)", idx, s);
  if (numel(t) > 0x7fffffff) fail(L, fname, "argument %d: %s has more than 2^31-1 elements (split it)", idx, s);
  if (written && t->grad_fn)
    fail(L, fname, "argument %d: the tensor %s is the result of an op that autograd recorded; reduce a detached copy", idx, s);
  return t;
}

static void bump(gen_tensor *t) { t->storage->version++; } /* an in-place write: saved tensors notice */

typedef enum { OP_SUM, OP_MEAN, OP_MAX } reduce_op;
static reduce_op op_arg(lua_State *L, int idx, const char *fname, const gen_tensor *t) {
  const char *s = luaL_optstring(L, idx, "sum");
  reduce_op op;
  if (!strcmp(s, "sum"))
    op = OP_SUM;
  else if (!strcmp(s, "mean"))
    op = OP_MEAN;
  else if (!strcmp(s, "max"))
    op = OP_MAX;
  else
    fail(L, fname, "op must be \"sum\", \"mean\" or \"max\", got \"%s\"", s);
  if (op == OP_MEAN && t->dtype != GEN_FLOAT32 && t->dtype != GEN_FLOAT64)
    fail(L, fname, "op \"mean\" needs a float tensor, got %s", dtype_name(t->dtype));
  return op;
}

static void divide(gen_tensor *t, int p) {
  int64_t n = numel(t);
  if (t->dtype == GEN_FLOAT32) {
    float *x = data(t);
    for (int64_t i = 0; i < n; i++) x[i] /= (float)p;
  } else {
    double *x = data(t);
    for (int64_t i = 0; i < n; i++) x[i] /= (double)p;
  }
}

/* ---- the progress thread ---- */

static pthread_t progress_tid;
static int progress_on;                    /* the thread exists (set and read by the Lua thread) */
static int progress_flying, progress_quit; /* under progress_mu */
static pthread_mutex_t progress_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t progress_cv = PTHREAD_COND_INITIALIZER;
static MPI_Comm progress_comm = MPI_COMM_NULL; /* nobody sends on it: the probes only drive progress */

static void *progress_main(void *unused) {
  (void)unused;
  for (;;) {
    pthread_mutex_lock(&progress_mu);
    while (progress_flying == 0 && !progress_quit) pthread_cond_wait(&progress_cv, &progress_mu);
    int quit = progress_quit;
    pthread_mutex_unlock(&progress_mu);
    if (quit) return NULL;
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, progress_comm, &flag, MPI_STATUS_IGNORE);
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
}

/* One more (delta 1) or one fewer (delta -1) non-blocking request in flight. */
static void progress_count(int delta) {
  if (!progress_on) return;
  pthread_mutex_lock(&progress_mu);
  progress_flying += delta;
  if (progress_flying > 0) pthread_cond_signal(&progress_cv);
  pthread_mutex_unlock(&progress_mu);
}

static void progress_start(void) {
  if (MPI_Comm_dup(MPI_COMM_WORLD, &progress_comm) != MPI_SUCCESS) return;
  progress_quit = progress_flying = 0;
  progress_on = pthread_create(&progress_tid, NULL, progress_main, NULL) == 0;
  if (!progress_on) MPI_Comm_free(&progress_comm);
}

/* Before MPI_Finalize: the thread must have made its last MPI call. */
static void progress_stop(void) {
  if (!progress_on) return;
  pthread_mutex_lock(&progress_mu);
  progress_quit = 1;
  pthread_cond_signal(&progress_cv);
  pthread_mutex_unlock(&progress_mu);
  pthread_join(progress_tid, NULL);
  progress_on = 0;
  MPI_Comm_free(&progress_comm);
}

static void finalize(void) {
  if (!active()) return;
  progress_stop();
  MPI_Finalize();
}

/* ---- waiting with a deadline ---- */

/* MPI's non-blocking collectives (libnbc) advance one round per MPI call, so the first
 * milliseconds poll back to back, yielding the core between polls (an all-gather of a few MB takes
 * dozens of rounds); after that, short sleeps, then longer ones, until the deadline. */
static void wait_req(lua_State *L, MPI_Request *req, const char *fname) {
  double start = now(), deadline = start + timeout_s;
  for (;;) {
    int done = 0;
    check_rc(L, MPI_Test(req, &done, MPI_STATUS_IGNORE), fname);
    if (done) return;
    double t = now();
    if (t - start < 0.005) {
      sched_yield();
      continue;
    }
    struct timespec ts = {0, t - start < 0.1 ? 20000 : 200000}; /* 20 us, then 0.2 ms */
    nanosleep(&ts, NULL);
    if (t > deadline)
      fail(L, fname,
           "rank %d of %d waited %g s for the other ranks (one died, hung, or stopped calling collectives); "
           "stopping (gen.dist.init{timeout = s} sets the limit)",
           world_rank, world_size, timeout_s);
  }
}

/* ---- requests (non-blocking collectives) ---- */

typedef struct {
  MPI_Request req;
  int pending;
  int counted; /* counted among the progress thread's requests in flight */
  reduce_op op;
  gen_tensor *result; /* divided by size() on completion for "mean"; kept alive by a user value */
} request;

static request *new_request(lua_State *L, int n_keep, const int *keep) {
  request *r = lua_newuserdatauv(L, sizeof *r, n_keep);
  memset(r, 0, sizeof *r);
  r->req = MPI_REQUEST_NULL;
  luaL_setmetatable(L, REQUEST_MT);
  for (int i = 0; i < n_keep; i++) {
    lua_pushvalue(L, keep[i]);
    lua_setiuservalue(L, -2, i + 1);
  }
  return r;
}

static void settle(request *r) {
  r->pending = 0;
  if (r->counted) progress_count(-1);
  r->counted = 0;
}

static void complete(request *r) {
  settle(r);
  if (r->op == OP_MEAN) divide(r->result, world_size);
  if (r->result) bump(r->result);
}

static int l_request_wait(lua_State *L) {
  request *r = luaL_checkudata(L, 1, REQUEST_MT);
  if (r->pending) {
    need_active(L, "gen.dist.Request:wait");
    wait_req(L, &r->req, "gen.dist.Request:wait");
    complete(r);
  }
  lua_settop(L, 1);
  return 1;
}

static int l_request_test(lua_State *L) {
  request *r = luaL_checkudata(L, 1, REQUEST_MT);
  if (r->pending) {
    need_active(L, "gen.dist.Request:test");
    int done = 0;
    check_rc(L, MPI_Test(&r->req, &done, MPI_STATUS_IGNORE), "gen.dist.Request:test");
    if (done) complete(r);
  }
  lua_pushboolean(L, !r->pending);
  return 1;
}

/* A request collected while its collective runs: MPI still writes into the buffers the user
 * values keep alive, so wait for it (bounded by the timeout) rather than free them under MPI. */
static int l_request_gc(lua_State *L) {
  request *r = luaL_checkudata(L, 1, REQUEST_MT);
  if (!r->pending || !active()) return 0;
  double deadline = now() + timeout_s;
  int done = 0;
  while (!done && now() < deadline) {
    if (MPI_Test(&r->req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
    if (!done) sched_yield();
  }
  settle(r);
  return 0;
}

/* ---- the module ---- */

static int l_init(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    double t = luaL_checknumber(L, 1);
    if (!(t > 0)) fail(L, "gen.dist.init", "timeout must be > 0 seconds, got %g", t);
    timeout_s = t;
  }
  int want_progress = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
  int init = 0, fin = 0;
  MPI_Finalized(&fin);
  if (fin) fail(L, "gen.dist.init", "MPI was already finalized in this process; it cannot start again");
  MPI_Initialized(&init);
  if (!init) {
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, want_progress ? MPI_THREAD_MULTIPLE : MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      fail(L, "gen.dist.init", "MPI_Init_thread failed (is this process started by mpirun?)");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (want_progress && provided == MPI_THREAD_MULTIPLE) progress_start();
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  lua_pushinteger(L, world_rank);
  lua_pushinteger(L, world_size);
  return 2;
}

static int l_initialized(lua_State *L) {
  lua_pushboolean(L, active());
  return 1;
}

static int l_rank(lua_State *L) {
  need_active(L, "gen.dist.rank");
  lua_pushinteger(L, world_rank);
  return 1;
}

static int l_size(lua_State *L) {
  need_active(L, "gen.dist.size");
  lua_pushinteger(L, world_size);
  return 1;
}

static int l_set_timeout(lua_State *L) {
  double t = luaL_checknumber(L, 1);
  if (!(t > 0)) fail(L, "gen.dist.set_timeout", "timeout must be > 0 seconds, got %g", t);
  lua_pushnumber(L, timeout_s);
  timeout_s = t;
  return 1;
}

static int l_finalize(lua_State *L) {
  finalize();
  return 0;
}

static int l_progress_thread(lua_State *L) {
  lua_pushboolean(L, progress_on);
  return 1;
}

/* Ends every rank of the job: what a rank that cannot go on does, so the others do not wait. */
static int l_abort(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 1);
  const char *msg = luaL_optstring(L, 2, NULL);
  if (msg) {
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
  }
  if (active()) MPI_Abort(MPI_COMM_WORLD, code);
  exit(code);
}

static int l_barrier(lua_State *L) {
  need_active(L, "gen.dist.barrier");
  MPI_Request req;
  check_rc(L, MPI_Ibarrier(MPI_COMM_WORLD, &req), "gen.dist.barrier");
  wait_req(L, &req, "gen.dist.barrier");
  return 0;
}

static MPI_Op mpi_op(reduce_op op) { return op == OP_MAX ? MPI_MAX : MPI_SUM; }

/* A posted request: a non-blocking call returns it (on top of the stack); a blocking one waits
 * for it and returns the tensor it wrote (argument 1). */
static int posted(lua_State *L, request *r, int nonblocking, const char *fname) {
  r->pending = 1;
  if (nonblocking) {
    r->counted = 1;
    progress_count(1);
    return 1;
  }
  wait_req(L, &r->req, fname);
  complete(r);
  lua_settop(L, 1);
  return 1;
}

static int start_all_reduce(lua_State *L, const char *fname, int nonblocking) {
  need_active(L, fname);
  gen_tensor *t = tensor_arg(L, 1, fname, 1);
  reduce_op op = op_arg(L, 2, fname, t);
  request *r = new_request(L, 1, (int[]){1});
  r->op = op;
  r->result = t;
  check_rc(L, MPI_Iallreduce(MPI_IN_PLACE, data(t), (int)numel(t), mpi_type(t->dtype), mpi_op(op), MPI_COMM_WORLD, &r->req),
           fname);
  return posted(L, r, nonblocking, fname);
}

static int l_all_reduce(lua_State *L) { return start_all_reduce(L, "gen.dist.all_reduce", 0); }
static int l_iall_reduce(lua_State *L) { return start_all_reduce(L, "gen.dist.iall_reduce", 1); }

static int l_broadcast(lua_State *L) {
  const char *fname = "gen.dist.broadcast";
  need_active(L, fname);
  gen_tensor *t = tensor_arg(L, 1, fname, 1);
  lua_Integer root = luaL_optinteger(L, 2, 0);
  if (root < 0 || root >= world_size) fail(L, fname, "root must be a rank in 0..%d, got %lld", world_size - 1, (long long)root);
  MPI_Request req;
  check_rc(L, MPI_Ibcast(data(t), (int)numel(t), mpi_type(t->dtype), (int)root, MPI_COMM_WORLD, &req), fname);
  wait_req(L, &req, fname);
  bump(t);
  lua_settop(L, 1);
  return 1;
}

/* out must hold size() blocks of t's element count, same dtype. */
static void check_out(lua_State *L, const char *fname, const gen_tensor *out, const gen_tensor *t, int64_t want) {
  char a[160], b[160];
  shape_str(a, sizeof a, out);
  shape_str(b, sizeof b, t);
  if (out->dtype != t->dtype)
    fail(L, fname, "the output is %s but the input is %s", dtype_name(out->dtype), dtype_name(t->dtype));
  if (numel(out) != want)
    fail(L, fname, "the output %s needs %lld elements for the input %s on %d ranks", a, (long long)want, b, world_size);
  if (out->storage == t->storage) fail(L, fname, "the output %s and the input %s share memory", a, b);
}

static int start_all_gather(lua_State *L, const char *fname, int nonblocking) {
  need_active(L, fname);
  gen_tensor *out = tensor_arg(L, 1, fname, 1);
  gen_tensor *t = tensor_arg(L, 2, fname, 0);
  check_out(L, fname, out, t, numel(t) * world_size);
  request *r = new_request(L, 2, (int[]){1, 2});
  r->result = out;
  MPI_Datatype ty = mpi_type(t->dtype);
  int n = (int)numel(t);
  check_rc(L, MPI_Iallgather(data(t), n, ty, data(out), n, ty, MPI_COMM_WORLD, &r->req), fname);
  return posted(L, r, nonblocking, fname);
}

static int l_all_gather(lua_State *L) { return start_all_gather(L, "gen.dist.all_gather", 0); }
static int l_iall_gather(lua_State *L) { return start_all_gather(L, "gen.dist.iall_gather", 1); }

static int l_reduce_scatter(lua_State *L) {
  const char *fname = "gen.dist.reduce_scatter";
  need_active(L, fname);
  gen_tensor *out = tensor_arg(L, 1, fname, 1);
  gen_tensor *t = tensor_arg(L, 2, fname, 0);
  reduce_op op = op_arg(L, 3, fname, t);
  char s[160];
  shape_str(s, sizeof s, t);
  if (t->ndim < 1 || t->shape[0] % world_size != 0)
    fail(L, fname, "the input %s must split into %d equal parts along its first dimension", s, world_size);
  check_out(L, fname, out, t, numel(t) / world_size);
  MPI_Request req;
  check_rc(L,
           MPI_Ireduce_scatter_block(data(t), data(out), (int)numel(out), mpi_type(t->dtype), mpi_op(op), MPI_COMM_WORLD, &req),
           fname);
  wait_req(L, &req, fname);
  if (op == OP_MEAN) divide(out, world_size);
  bump(out);
  lua_settop(L, 1);
  return 1;
}

/* Finalizes MPI when the Lua state closes (a normal end), and at exit() for os.exit without
 * closing the state. A rank ending on an error calls abort instead (lua/gen/app/run.lua). */
static int l_shutdown_gc(lua_State *L) {
  finalize();
  return 0;
}
static void at_exit(void) { finalize(); }

static const luaL_Reg functions[] = {
    {"init", l_init},
    {"initialized", l_initialized},
    {"rank", l_rank},
    {"size", l_size},
    {"set_timeout", l_set_timeout},
    {"finalize", l_finalize},
    {"progress_thread", l_progress_thread},
    {"abort", l_abort},
    {"barrier", l_barrier},
    {"all_reduce", l_all_reduce},
    {"iall_reduce", l_iall_reduce},
    {"broadcast", l_broadcast},
    {"all_gather", l_all_gather},
    {"iall_gather", l_iall_gather},
    {"reduce_scatter", l_reduce_scatter},
    {NULL, NULL},
};

static const luaL_Reg request_methods[] = {
    {"wait", l_request_wait},
    {"test", l_request_test},
    {NULL, NULL},
};

int luaopen_gen_mpi(lua_State *L);
int luaopen_gen_mpi(lua_State *L) {
  if (luaL_newmetatable(L, REQUEST_MT)) {
    luaL_newlib(L, request_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_request_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  /* the shutdown sentinel lives in the registry, so it is collected when the state closes */
  lua_newuserdatauv(L, 1, 0);
  lua_newtable(L);
  lua_pushcfunction(L, l_shutdown_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, "gen.mpi.shutdown");
  static int registered;
  if (!registered) registered = atexit(at_exit) == 0;
  luaL_newlib(L, functions);
  return 1;
}
