-- The scripting sandbox, run once per Lua VM (chunk name "=ringkv"; frames of this chunk are skipped when an error
-- is located, like Redis skips its C library frames).
--
-- Arguments: the real environment table scripts see through a read-only proxy, the internal table of Rust
-- functions, and the Rust-made libraries. Returns the read-only proxy that becomes every script's environment.
--
-- Redis 7 rules kept here: the globals and every library table are read-only ("Attempt to modify a readonly
-- table"), reading a missing global is an error, and only Redis's allow-listed globals exist.
local G, raw, libs, base = ...

local setmetatable, error, rawset, type, tostring = setmetatable, error, rawset, type, tostring
local pcall, xpcall, select, pairs, setfenv = pcall, xpcall, select, pairs, setfenv
local loadstring, concat = loadstring, table.concat
local unwrap = raw.unwrap

local protected = setmetatable({}, { __mode = "k" })

local function readonly()
  error("Attempt to modify a readonly table", 2)
end

local function protect(t)
  local p = setmetatable({}, { __index = t, __newindex = readonly, __metatable = false })
  protected[p] = true
  return p
end

-- The redis table.
local redis = {}
-- redis.call and redis.pcall are set by Rust in this table (made once, they reach the run in progress).
raw.redis = redis
local errtable = raw.errtable
function redis.error_reply(...)
  local e = ...
  if select("#", ...) ~= 1 or type(e) ~= "string" then
    return errtable("wrong number or type of arguments")
  end
  if e:sub(1, 1) ~= "-" then
    e = "-" .. e
  end
  return errtable(e)
end
function redis.status_reply(...)
  local s = ...
  if select("#", ...) ~= 1 or type(s) ~= "string" then
    return errtable("wrong number or type of arguments")
  end
  return { ok = s }
end
redis.sha1hex = raw.sha1hex
redis.log = raw.log
redis.setresp = raw.setresp
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
-- Effects replication is the only mode since Redis 7: these stay for old scripts and do nothing.
function redis.set_repl(...)
  local flags = ...
  if select("#", ...) ~= 1 then
    error("redis.set_repl() requires one argument.", 0)
  end
  if type(flags) ~= "number" or flags < 0 or flags > 3 then
    error("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.", 0)
  end
end
function redis.replicate_commands()
  return true
end
function redis.breakpoint()
  return false
end
function redis.debug() end
redis.REDIS_VERSION = raw.version
redis.REDIS_VERSION_NUM = raw.version_num

-- Globals Redis 7 allows.
for _, name in pairs({
  "assert", "collectgarbage", "error", "gcinfo", "getmetatable", "ipairs", "next", "pairs", "rawequal",
  "rawget", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "_VERSION",
}) do
  G[name] = base[name]
end
for _, name in pairs({ "string", "table", "math", "coroutine" }) do
  G[name] = protect(base[name])
end
G.redis = protect(redis)
for name, lib in pairs(libs) do
  G[name] = protect(lib)
end
-- String methods ("s:sub(1)") reach the read-only proxy too.
getmetatable("").__index = G.string

local env = protect(G)
G._G = env

-- Runs script f with its KEYS and ARGV under xpcall (Rust calls this once per run: setting the two globals here is
-- cheaper than from Rust).
function raw.run(f, handler, keys, argv)
  G.KEYS, G.ARGV = keys, argv
  return xpcall(f, handler)
end

-- Errors raised by Rust functions reach Lua as userdata: a script catching one sees the string (or, for
-- redis.call, the {err=...} table) a C library would have raised.
local function caught(ok, ...)
  if ok then
    return ok, ...
  end
  return false, unwrap((...))
end
function G.pcall(f, ...)
  return caught(pcall(f, ...))
end
function G.xpcall(f, handler)
  return xpcall(f, function(e)
    return handler(unwrap(e))
  end)
end

-- rawset must not write through a read-only proxy.
function G.rawset(t, k, v)
  if protected[t] then
    error("Attempt to modify a readonly table", 0)
  end
  return rawset(t, k, v)
end

-- Chunks compiled by a script run in the sandbox too; precompiled bytecode is refused.
local function compile(s, name)
  if type(s) == "string" and s:sub(1, 1) == "\27" then
    return nil, "attempt to load a binary chunk"
  end
  local f, e = loadstring(s, name)
  if f then
    setfenv(f, env)
  end
  return f, e
end
G.loadstring = compile
function G.load(f, name)
  if type(f) ~= "function" then
    error("bad argument #1 to 'load' (function expected, got " .. type(f) .. ")", 2)
  end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == "" then
      break
    end
    parts[#parts + 1] = piece
  end
  return compile(concat(parts), name or "=(load)")
end

setmetatable(G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __metatable = false,
})

return env
