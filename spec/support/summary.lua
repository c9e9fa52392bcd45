-- A busted output handler: the plain terminal output, then the one line CI reads,
-- "N passed, N failed" (errors count as failures; pending tests are listed as skipped).
return function(options)
  local busted = require "busted"
  local plain = require "busted.outputHandlers.plainTerminal"(options)
  local function summary()
    local failed = plain.failuresCount + plain.errorsCount
    local line = string.format("%d passed, %d failed", plain.successesCount, failed)
    if plain.pendingsCount > 0 then line = line .. string.format(", %d skipped", plain.pendingsCount) end
    io.write("\n", line, "\n")
    io.flush()
    return nil, true
  end
  busted.subscribe({ "suite", "end" }, summary, { priority = -1 })
  return plain
end
