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

-- Read-only proxy -> the table it shows.
local protected = setmetatable({}, { __mode = "k" })

local function readonly()
  error("Attempt to modify a readonly table", 2)
end

local function protect(t)
  local p = setmetatable({}, { __index = t, __newindex = readonly, __metatable = false })
  protected[p] = t
  return p
end

-- The redis table.
local redis = {}
-- redis.call and redis.pcall are set by Rust in this table and in the functions' copy below (made once, they reach
-- the run in progress).
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
redis.acl_check_cmd = raw.acl_check_cmd
-- Effects replication is the only mode since Redis 7: these stay for old scripts and do nothing.
redis.set_repl = raw.set_repl
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
local getmetatable = getmetatable
local string_meta = getmetatable("")
string_meta.__index = G.string
-- The string metatable is shared by every script of this VM: scripts see it read-only, as in Redis 7, so none can
-- leave a field there for the next script or break string methods. Redis's read-only tables have no metatable of
-- their own; the proxies here hide theirs the same way.
local string_meta_view = protect(string_meta)
function G.getmetatable(v)
  if type(v) == "string" then
    return string_meta_view
  end
  if protected[v] then
    return nil
  end
  return getmetatable(v)
end

local env = protect(G)
G._G = env

-- Runs script f with its KEYS and ARGV under xpcall (Rust calls this once per run: setting the two globals here is
-- cheaper than from Rust).
function raw.run(f, handler, keys, argv)
  G.KEYS, G.ARGV = keys, argv
  return xpcall(f, handler)
end

-- Errors raised by Rust functions reach Lua as userdata: a script catching one sees what a C function would have
-- raised, a string or (redis.call and the redis.* helpers) an {err=...} table. Redis 7's pcall then turns an error
-- table into its `err` text (error({err=...}) too); an xpcall handler gets the table.
local function caught(ok, ...)
  if ok then
    return ok, ...
  end
  local e = unwrap((...))
  if type(e) == "table" then
    local text = e.err
    if type(text) == "string" or type(text) == "number" then
      return false, text
    end
    -- Redis's pcall leaves the `err` field it looked up on the stack: a third result (nil, mostly).
    return false, e, text
  end
  return false, e
end
function G.pcall(f, ...)
  return caught(pcall(f, ...))
end
function G.xpcall(f, handler)
  return xpcall(f, function(e)
    return handler(unwrap(e))
  end)
end

-- rawset must not write through a read-only proxy; the raw readers and iterators see the table behind one, as they
-- see Redis's read-only tables (pairs(redis), next(cjson), rawget(string, "upper")).
function G.rawset(t, k, v)
  if protected[t] then
    error("Attempt to modify a readonly table", 0)
  end
  return rawset(t, k, v)
end
local rawget, next, ipairs = rawget, next, ipairs
function G.rawget(t, k)
  return rawget(protected[t] or t, k)
end
function G.next(t, k)
  return next(protected[t] or t, k)
end
function G.pairs(t)
  return pairs(protected[t] or t)
end
function G.ipairs(t)
  return ipairs(protected[t] or t)
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

local missing_global = {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
  __metatable = false,
}

-- Functions (FUNCTION LOAD, FCALL). A library's code runs in an environment that shows only the load API (as in
-- Redis: redis.register_function, redis.log and the versions); the functions it registers run later in the same
-- environment switched to the globals scripts have, without KEYS and ARGV (a function gets them as arguments).
local GF = {}
for k, v in pairs(G) do
  GF[k] = v
end
-- Redis gives functions the redis API without EVAL's debugger and replication helpers (Rust adds call and pcall
-- here too).
local fredis = {}
for k, v in pairs(redis) do
  fredis[k] = v
end
fredis.debug, fredis.breakpoint, fredis.replicate_commands = nil, nil, nil
raw.fredis = fredis
GF.redis = protect(fredis)
local load_api = {
  register_function = nil, -- set below
  log = raw.log,
  REDIS_VERSION = raw.version,
  REDIS_VERSION_NUM = raw.version_num,
}
load_api.LOG_DEBUG, load_api.LOG_VERBOSE, load_api.LOG_NOTICE, load_api.LOG_WARNING = 0, 1, 2, 3
local LOADING = { redis = protect(load_api) }
local fmeta = { __index = GF, __newindex = readonly, __metatable = false }
local fenv = setmetatable({}, fmeta)
protected[fenv] = GF
GF._G = fenv
raw.fenv = fenv

local flag_bits = { ["no-writes"] = 1, ["allow-oom"] = 2, ["allow-stale"] = 4, ["no-cluster"] = 8,
  ["allow-cross-slot-keys"] = 16 }
-- The functions the library being loaded has registered, or nil outside FUNCTION LOAD.
local registered
local lower = string.lower

local function fail(msg)
  error(errtable(msg))
end

-- lua_isstring: a string or a number.
local function is_text(v)
  local t = type(v)
  return t == "string" or t == "number"
end

local function read_flags(list)
  local flags, seen = 0, {}
  local i = 1
  while true do
    local f = list[i]
    if f == nil then
      return flags
    end
    local bit = is_text(f) and flag_bits[lower(f)]
    if not bit then
      fail("unknown flag given")
    end
    if not seen[bit] then
      seen[bit] = true
      flags = flags + bit
    end
    i = i + 1
  end
end

local function register_function(...)
  if not registered then
    fail("redis.register_function can only be called on FUNCTION LOAD command")
  end
  local n = select("#", ...)
  if n < 1 or n > 2 then
    fail("wrong number of arguments to redis.register_function")
  end
  local name, callback, flags, description
  if n == 2 then
    name, callback = ...
    if not is_text(name) then
      fail("first argument to redis.register_function must be a string")
    end
    if type(callback) ~= "function" then
      fail("second argument to redis.register_function must be a function")
    end
  else
    local args = ...
    if type(args) ~= "table" then
      fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
    end
    for k, v in next, args do
      if not is_text(k) then
        fail("named argument key given to redis.register_function is not a string")
      end
      k = lower(k)
      if k == "function_name" then
        if not is_text(v) then
          fail("function_name argument given to redis.register_function must be a string")
        end
        name = v
      elseif k == "description" then
        if not is_text(v) then
          fail("description argument given to redis.register_function must be a string")
        end
        description = tostring(v)
      elseif k == "callback" then
        if type(v) ~= "function" then
          fail("callback argument given to redis.register_function must be a function")
        end
        callback = v
      elseif k == "flags" then
        if type(v) ~= "table" then
          fail("flags argument to redis.register_function must be a table representing function flags")
        end
        flags = read_flags(v)
      else
        fail("unknown argument given to redis.register_function")
      end
    end
    if name == nil then
      fail("redis.register_function must get a function name argument")
    end
    if callback == nil then
      fail("redis.register_function must get a callback argument")
    end
  end
  name = tostring(name)
  if not name:find("^[%w_]+$") then
    fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
  end
  if registered[name] then
    fail("Function already exists in the library")
  end
  registered[name] = true
  registered[#registered + 1] = { name = name, callback = callback, flags = flags or 0, description = description }
end
load_api.register_function = register_function

-- Runs library chunk f with only the load API visible. Returns true and the registered functions (a list of
-- {name, callback, flags, description}), or false and the error.
function raw.load_library(f)
  registered = {}
  fmeta.__index = LOADING
  local ok, e = pcall(f)
  fmeta.__index = GF
  local list = registered
  registered = nil
  if ok then
    return true, list
  end
  return false, unwrap(e)
end

-- Calls function f with its keys and arguments under xpcall (FCALL).
function raw.fcall(f, handler, keys, args)
  return xpcall(function()
    return f(keys, args)
  end, handler)
end

setmetatable(G, missing_global)
setmetatable(GF, missing_global)
setmetatable(LOADING, missing_global)
-- At load time a missing redis.* field is an error too (Redis protects that table so); at run time it reads nil.
setmetatable(load_api, missing_global)

return env
