"""Password-protected room: the password is generated, shown once, and required to join.

export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
python examples/password_protected_room.py
"""

import asyncio
import secrets

from spectator_client import InvalidPassword, SpectatorManager


async def main() -> None:
    async with SpectatorManager() as manager:
        session = await manager.create_spectator_session(
            f"example-password-{secrets.token_hex(3)}", password_protected=True, max_spectators=5
        )
        print(f"Room {session.room_code}, password {session.room_password} (shown only now)")

        async with SpectatorManager(api_token="") as guest:
            try:
                await guest.join_spectator_session(session.room_code, spectator_name="Guess", password="not-it")
                raise SystemExit("a wrong password was accepted")
            except InvalidPassword as exc:
                print(f"Wrong password refused: {exc}")
            joined = await guest.join_spectator_session(
                session.room_code, spectator_name="Grace", password=session.room_password
            )
            print(f"Right password: {joined['status']}; live stream at {joined['websocket_url'].split('?')[0]}")
            await guest.leave_spectator_session(session.room_code)

        await manager.close_session(session.session_id)
        print("Closed the room")


if __name__ == "__main__":
    asyncio.run(main())
