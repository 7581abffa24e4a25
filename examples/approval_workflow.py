"""Approval workflow: joins wait for the owner, who approves one request and denies another.

export SPECTATOR_URL=http://127.0.0.1:8000 SPECTATOR_TOKEN=spt_…
python examples/approval_workflow.py
"""

import asyncio
import secrets

from spectator_client import AccessDenied, AccessLevel, RoomAccessControl, SpectatorRoomManager


async def main() -> None:
    async with SpectatorRoomManager() as owner:
        room = await owner.create_spectator_room(
            f"example-approval-{secrets.token_hex(3)}",
            access_control=RoomAccessControl(AccessLevel.PUBLIC, require_approval=True, max_spectators=5),
        )
        print(f"Room {room.room_code} needs the owner's approval to join")

        async with SpectatorRoomManager(api_token="") as ann, SpectatorRoomManager(api_token="") as ben:
            for guest, name in ((ann, "Ann"), (ben, "Ben")):
                request = await guest.join_room_request(
                    room.room_code, user_name=name, user_metadata={"message": f"{name} from the lab"}
                )
                print(f"{name} asks to join: {request['status']}")

            pending = await owner.get_pending_approvals(room.room_code)
            print("Pending:", ", ".join(f"{r['display_name']} ({r['message']})" for r in pending))
            await owner.approve_join_request(room.room_code, "Ann")
            await owner.approve_join_request(room.room_code, "Ben", approved=False)

            joined = await ann.join_room_request(room.room_code, user_name="Ann")
            print(f"Ann asks again: {joined['status']}")
            try:
                await ben.join_room_request(room.room_code, user_name="Ben")
                raise SystemExit("a denied request got in")
            except AccessDenied as exc:
                print(f"Ben asks again: refused ({exc})")
            assert joined["status"] == "approved"
            await ann.leave_room(room.room_code)

        await owner.close_room(room.room_code)
        print("Closed the room")


if __name__ == "__main__":
    asyncio.run(main())
