"""The gate's key budgets (streamer_budget.lua, in nginx's own LuaJIT) answer every step of
tests/vectors/key_budgets.json as the Python edge does (tests/edge/test_key_budget_vectors.py).

The vectors run in init_by_lua while nginx loads the config: the same Lua, the same LuaJIT; the
block then exits the process (`nginx -t` skips init_by_lua), so no server is started. Never
skipped: without nginx and its Lua module this fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cdn_edge.nginx_tier.config import DEBIAN_LUA_MODULE, DEBIAN_NDK_MODULE, SCRIPT
from cdn_edge.nginx_tier.process import DEFAULT_NGINX

VECTORS_FILE = Path(__file__).parent.parent / "vectors" / "key_budgets.json"

RUN_VECTORS = """
local cjson = require("cjson")
local budget = require("streamer_budget")
local file = assert(io.open("{vectors}", "rb"))
local doc = cjson.decode(file:read("*a"))
file:close()
local out = {{}}
for i, case in ipairs(doc.cases) do
    local buckets = {{}}
    local function take(name, capacity, rate, now)
        local b = buckets[name] or {{}}
        local tokens, updated, wait = budget.take(b[1], b[2], capacity, rate, 1, now)
        buckets[name] = {{ tokens, updated }}
        return wait
    end
    local s = {{ capacity = case.session_budget[1], rate = case.session_budget[2] }}
    local l = {{ capacity = case.listener_budget[1], rate = case.listener_budget[2] }}
    local answers = {{}}
    for j, step in ipairs(case.steps) do
        local wait, by = budget.spend(take, step.session, step.listener, s, l, step.at)
        if wait == 0 then
            answers[j] = {{ 200, cjson.null, cjson.null }}
        else
            answers[j] = {{ 429, budget.retry_after(wait), by }}
        end
    end
    out[i] = answers
end
local result = assert(io.open("{result}", "wb"))
result:write(cjson.encode(out))
result:close()
os.exit(0)
"""


def test_the_gate_answers_each_step(tmp_path: Path) -> None:
    result = tmp_path / "answers.json"
    init = RUN_VECTORS.format(vectors=VECTORS_FILE, result=result)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"load_module {DEBIAN_NDK_MODULE};\n"
        f"load_module {DEBIAN_LUA_MODULE};\n"
        f"error_log {tmp_path}/error.log;\n"
        f"pid {tmp_path}/nginx.pid;\n"
        "events {}\n"
        "http {\n"
        f'    lua_package_path "{SCRIPT.parent}/?.lua;;";\n'
        f"    init_by_lua_block {{\n{init}\n    }}\n"
        "}\n"
    )
    checked = subprocess.run(
        [DEFAULT_NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(conf),
         "-g", "daemon off; master_process off;"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    answers = json.loads(result.read_text())
    cases = json.loads(VECTORS_FILE.read_text())["cases"]
    assert len(answers) == len(cases)
    for case, got in zip(cases, answers, strict=True):
        assert got == case["expect"], case["name"]
