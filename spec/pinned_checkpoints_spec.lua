-- The DCGAN and rectified-flow examples after 20 steps at seed 7, on 1 and on 2 threads: the same
-- bits either way (GEMMs split into blocks fixed by their shape, sums in a fixed order), and the
-- digest pinned here, so that code that moves cannot change them. A change of numerics that is
-- meant must update these digests in the same commit (the last: attention's row sums in 16 partial
-- sums, the same at every ISA level; before it, float32 tanh through a vectorized kernel, which
-- moved the last bits of the DCGAN generator's output). The digests are those of the avx2 level
-- (GEN_ISA=avx2): the avx512 level's own SGEMM rounds differently from OpenBLAS, so there the flow
-- example is only checked to give the same bits on 1 thread as on 2.
local gen = require "gen"
local digest = require "support.digest"

local function run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  return p:close(), out
end

local base = os.tmpname()
os.remove(base)

-- make asan builds with other flags (-O1 and the sanitizers). The flow example used to differ
-- there in the last bits (attention's sums were compiled to another order) and had its own digest;
-- since those sums run in 16 fixed partial sums, both builds give the same bits. A case may still
-- carry an asan_digest if a build-dependent order comes back.
local sanitized = os.getenv("GEN_BUILD") == "build-asan"

local pinned = {
  { script = "examples/gan/dcgan.lua", extra = "",
    digest = "fb80ef4585dad29e0cbc534773c70b4a00b7ad457668903c966ee5f04244e942" },
  { script = "examples/diffusion/rectified_flow.lua", extra = " --sample-steps 1",
    digest = "57dceb82d216766457289dd42342f1947fb3434500309a90bc89ce8545e79143" },
}

local available = {}
for _, l in ipairs(gen.config().isa_available) do available[l] = true end

-- the checkpoint digests of a case at 2 and at 1 thread, at ISA level isa
local function digests(i, case, isa)
  local d = {}
  for _, threads in ipairs { 2, 1 } do
    local out_dir = string.format("%s/%d-%s-%d", base, i, isa, threads)
    local ok, out = run("GEN_ISA=" .. isa .. " bin/gen " .. case.script .. " --steps 20 --batch 16 --seed 7 --threads "
      .. threads .. case.extra .. " --out " .. out_dir)
    assert.is_true(ok, out)
    d[threads] = digest(out_dir .. "/checkpoint.safetensors")
  end
  return d
end

describe("pinned example checkpoints", function()
  if not available.avx2 then print("pinned_checkpoints_spec: skipped: the digests are pinned at avx2, which this CPU lacks") end
  for i, case in ipairs(available.avx2 and pinned or {}) do
    it(case.script .. " after 20 steps is bitwise what it was (avx2), on 1 thread as on 2", function()
      local d = digests(i, case, "avx2")
      assert.equal(sanitized and case.asan_digest or case.digest, d[2])
      assert.equal(d[2], d[1])
    end)
  end
  if available.avx512 then
    it(pinned[2].script .. " after 20 steps at avx512 is the same on 1 thread as on 2", function()
      local d = digests(2, pinned[2], "avx512")
      assert.equal(d[2], d[1])
    end)
  else
    print("pinned_checkpoints_spec: skipped the avx512 run: this CPU lacks AVX-512")
  end
  teardown(function() os.execute("rm -rf " .. base) end)
end)
