"""The JudgeServer functional check against an endpoint that misbehaves: what the endpoint answers is
never copied into the JudgeServer's status (other users of the namespace read it), and a reply too
large to be a model list cannot exhaust the operator. A hostile endpoint on loopback, in-process."""

from __future__ import annotations

import asyncio

from aiohttp import web

from proctor.controllers.judgeserver import MAX_REPLY_BYTES, functional_check

LEAK = "sk-live-SECRET-from-the-upstream-error-page"


async def _check_against(models_reply, chat_status: int) -> str:
    async def models(request):
        return models_reply()

    async def chat(request):
        return web.json_response({"error": {"message": f"upstream said {LEAK}"}}, status=chat_status)

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        result = await functional_check(f"http://127.0.0.1:{port}/v1", "m", None, timeout=10)
    finally:
        await runner.cleanup()
    assert not result.ok
    return result.message


def test_an_error_reply_is_reported_by_status_without_its_body():
    message = asyncio.run(_check_against(lambda: web.json_response({"data": [{"id": "m"}]}), chat_status=400))
    assert "HTTP 400" in message and "text-only" in message
    assert LEAK not in message and "upstream said" not in message


def test_a_reply_too_large_to_be_a_model_list_is_refused_unread():
    huge = b'{"data": [' + b'{"id": "x"},' * (MAX_REPLY_BYTES // 10) + b'{"id": "m"}]}'
    message = asyncio.run(_check_against(lambda: web.Response(body=huge), chat_status=200))
    assert "larger than" in message
