"""Private room with allowed users: only the creator and the listed users may join; to anyone
else the room does not exist.

    export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…           # the owner
    export SPECTATOR_GUEST_USER=bob SPECTATOR_GUEST_TOKEN=spt_…              # optional: an allowed user
    python examples/private_room.py
"""

import asyncio
import os
import secrets

from spectator_client import AccessLevel, RoomAccessControl, RoomNotFound, SpectatorRoomManager


async def main() -> None:
    guest_user = os.environ.get("SPECTATOR_GUEST_USER")
    guest_token = os.environ.get("SPECTATOR_GUEST_TOKEN")
    allowed = {guest_user} if guest_user else set()
    async with SpectatorRoomManager() as owner:
        room = await owner.create_spectator_room(
            f"example-private-{secrets.token_hex(3)}",
            access_control=RoomAccessControl(AccessLevel.PRIVATE, max_spectators=3, allowed_users=allowed),
            room_duration_hours=2,
        )
        print(f"Private room {room.room_code}; allowed users: {sorted(room.access_control.allowed_users) or 'none'}")

        async with SpectatorRoomManager(api_token="") as stranger:
            try:
                await stranger.join_room_request(room.room_code, user_name="Stranger")
                raise SystemExit("a stranger got into a private room")
            except RoomNotFound:
                print("A stranger is told there is no such room")

        if guest_user and guest_token:
            async with SpectatorRoomManager(api_token=guest_token) as guest:
                joined = await guest.join_room_request(room.room_code)
                print(f"{guest_user} (allowed) joins: {joined['status']}")
                await guest.leave_room(room.room_code)

        info = await owner.get_room_info(room.room_code)
        print(f"The owner still sees it: {info.room_status}, {info.access_control.access_level.value}")
        await owner.close_room(room.room_code)
        print("Closed the room")


if __name__ == "__main__":
    asyncio.run(main())
