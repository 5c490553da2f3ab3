--[[
The gate's lua_shared_dict zones, made resident up front, and what a status location reports of
them and of each worker's Lua heap (docs/reliability.md, "Soak", run G).

A zone is a shared anonymous mapping: a worker's RSS counts a page of it from the first time that
worker touches it. nginx's slab allocator hands out never-touched pages long after the zone's
live entries have stopped growing (a freed page merged into the big free run puts that run at the
head of the free list, and the next allocation takes its first, fresh page), so with entries
coming and going (key budgets expire within a minute and are made again) every worker's RSS rose
by about 0.6 MiB a minute until the zone would be all touched. `pretouch` faults every page of a
zone into the worker before it serves, as a JVM's AlwaysPreTouch: RSS then holds the zones' full
size from the start and stays there, and a growth of RSS is a growth of the worker's own memory.
]]

local ffi = require("ffi")
require("resty.core.shdict") -- declares ngx_http_lua_ffi_shdict_udata_to_zone

ffi.cdef([[
/* nginx's ngx_shm_zone_t (src/core/ngx_cycle.h) begins with `void *data` and then its
   ngx_shm_t (src/core/ngx_shmem.h), which begins with `u_char *addr; size_t size;`. */
typedef struct {
    void          *data;
    unsigned char *addr;
    size_t         size;
} streamer_shm_zone_head_t;
int madvise(void *addr, size_t length, int advice);
]])

local MADV_POPULATE_WRITE = 23 -- Linux 5.14: fault the pages in, writable, without writing
local PAGE = 4096 -- the smallest page; touching every 4 KiB touches every page

local M = {}

--- Faults every page of `dict` (an ngx.shared dict) into this process. `size` is the zone's
--- configured size in bytes: the zone's head is read through nginx's struct layout, so a zone
--- whose size is not that one is left alone. Returns the bytes touched and how, or nil and why.
function M.pretouch(dict, size)
    local zone = ffi.cast("streamer_shm_zone_head_t *",
        ffi.C.ngx_http_lua_ffi_shdict_udata_to_zone(dict[1]))
    local found = tonumber(zone.size)
    if found ~= size then
        return nil, "zone is " .. tostring(found) .. " bytes, not the configured " .. size
    end
    if ffi.C.madvise(zone.addr, found, MADV_POPULATE_WRITE) == 0 then
        return found, "madvise"
    end
    -- An older kernel: read one byte a page (shmem allocates a page on a read fault too).
    local bytes = ffi.cast("volatile unsigned char *", zone.addr)
    local sum = 0
    for offset = 0, found - 1, PAGE do
        sum = sum + bytes[offset]
    end
    return found, "read", sum
end

--- Capacity and wholly free bytes of each zone in `sizes` (name -> bytes).
function M.zone_stats(sizes)
    local zones = {}
    for name in pairs(sizes) do
        local dict = ngx.shared[name]
        zones[name] = { capacity = dict:capacity(), free_space = dict:free_space() }
    end
    return zones
end

return M
