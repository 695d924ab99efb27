"""Cheaper steps: partial indexes for acknowledgements and sent messages, one index less.

The sweep asks, for each batch, who acknowledged its hazards: a small index of only those
events answers without reading every event of every hazard. The outbox's index of sent
messages now holds only rows that were sent, so a row being written skips it. The hazards'
(state, deadline) index is dropped: since 0003 the deadline index serves the sweep and the
next deadline (only active hazards keep one), and each step's new deadline rewrote both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ACKED = sa.text("kind = 'acknowledged'")
SENT = sa.text("sent_message_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("hazards", schema=None) as batch_op:
        batch_op.drop_index("ix_hazards_due")
    with op.batch_alter_table("hazard_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hazard_events_acked",
            ["hazard_id"],
            unique=False,
            postgresql_where=ACKED,
            sqlite_where=ACKED,
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_sent")
        batch_op.create_index(
            "ix_outbox_sent",
            ["chat_id", "sent_message_id"],
            unique=False,
            postgresql_where=SENT,
            sqlite_where=SENT,
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_sent")
        batch_op.create_index("ix_outbox_sent", ["chat_id", "sent_message_id"], unique=False)
    with op.batch_alter_table("hazard_events", schema=None) as batch_op:
        batch_op.drop_index("ix_hazard_events_acked")
    with op.batch_alter_table("hazards", schema=None) as batch_op:
        batch_op.create_index("ix_hazards_due", ["state", "deadline"], unique=False)
