/* bind_signal.c — SIGINT as a Lua error, for the notebook kernel (lua/gen/kernel.lua).
 *
 * A signal handler may not raise a Lua error itself: it can arrive in the middle of the
 * interpreter, the allocator or a kernel. It only installs a count hook (lua_sethook is the one
 * Lua API function documented as safe to call asynchronously); the hook runs at the next Lua
 * instruction or call, where raising an error is safe, and raises "interrupted". This is what
 * lua.c does for Ctrl-C. A C kernel already running finishes first, so the error comes at the
 * next op boundary, and every tensor stays owned by a Lua slot: nothing leaks.
 *
 * Interrupts are armed only while user code runs: a SIGINT that lands while the kernel driver is
 * writing a reply is dropped instead of breaking the protocol.
 *
 *   core.interrupt_handler(on)   installs (true) or restores the previous (false) SIGINT handler
 *   core.interrupt_arm(on)       arms for the calling thread (true) or disarms; returns the old state
 */
#include <signal.h>
#include <string.h>

#include "bind.h"

static lua_State *volatile armed_L; /* the thread running user code, or NULL when disarmed */
static struct sigaction previous;
static int installed;

static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (armed_L == L) luaL_error(L, "interrupted");
}

static void on_sigint(int sig) {
  (void)sig;
  lua_State *L = armed_L;
  if (L) lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static int l_interrupt_handler(lua_State *L) {
  int on = lua_toboolean(L, 1);
  if (on && !installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* a read() in user code resumes; the hook fires right after it */
    if (sigaction(SIGINT, &sa, &previous) != 0) return luaL_error(L, "gen.core.interrupt_handler: sigaction failed");
    installed = 1;
  } else if (!on && installed) {
    armed_L = NULL;
    sigaction(SIGINT, &previous, NULL);
    installed = 0;
  }
  return 0;
}

static int l_interrupt_arm(lua_State *L) {
  int on = lua_toboolean(L, 1);
  lua_pushboolean(L, armed_L != NULL);
  if (on && !installed) return luaL_error(L, "gen.core.interrupt_arm: no handler installed (call interrupt_handler(true))");
  if (!on && armed_L) lua_sethook(armed_L, NULL, 0, 0); /* a hook set too late must not fire in the driver */
  armed_L = on ? L : NULL;
  return 1;
}

static const luaL_Reg functions[] = {
    {"interrupt_handler", l_interrupt_handler}, {"interrupt_arm", l_interrupt_arm}, {NULL, NULL}};

void bind_register_signal(lua_State *L) { luaL_setfuncs(L, functions, 0); }
