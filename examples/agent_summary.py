"""Post the session summary to aftercall when a LiveKit Agents session ends.

Drop this into your agent's entrypoint. It signs the request with the
LiveKit API key and secret the agent already has (LIVEKIT_API_KEY,
LIVEKIT_API_SECRET): a JWT whose `sha256` claim is the SHA-256 of the body,
as LiveKit signs its own webhooks, so aftercall needs no extra secret.

    pip install livekit-agents livekit-api aiohttp
"""
import base64
import hashlib
import json
import os

import aiohttp
from livekit import api
from livekit.agents import AgentSession, JobContext

AFTERCALL_URL = os.environ["AFTERCALL_URL"]  # https://aftercall.example.com


async def post_summary(ctx: JobContext, session: AgentSession, summary: str, data: dict):
    body = json.dumps({
        "room": ctx.room.name,
        "room_sid": await ctx.room.sid,
        "participant": next(iter(ctx.room.remote_participants), None),
        "template": "summary",
        "summary": summary,
        "data": data,
        "transcript": session.history.to_dict()["items"],
    }).encode()
    token = (
        api.AccessToken()  # reads LIVEKIT_API_KEY / LIVEKIT_API_SECRET
        .with_sha256(base64.b64encode(hashlib.sha256(body).digest()).decode())
        .to_jwt()
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{AFTERCALL_URL}/v1/transcripts",
            data=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=8),  # shutdown callbacks get ~10 s
        ) as resp:
            resp.raise_for_status()


async def entrypoint(ctx: JobContext):
    session = AgentSession()  # your STT/LLM/TTS here
    notes = {"summary": "", "data": {}}  # fill these in as the call goes

    async def on_shutdown():
        await post_summary(ctx, session, notes["summary"], notes["data"])

    ctx.add_shutdown_callback(on_shutdown)
    await ctx.connect()
    # ... start the session as usual ...
