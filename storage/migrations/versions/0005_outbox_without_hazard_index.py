"""The outbox's index on hazard_id is dropped: no query of the bot reads the outbox by hazard.

Rows are claimed by (status, not_before), deduplicated by their key and found again by the
message they became; the index on hazard_id served only a helper of the tests. Every row
written paid for it, and a catch-up writes two rows per overdue hazard (benchmarks/catchup.py).
The foreign key stays: it checks hazards' primary key, not this index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_hazard_id")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_hazard_id", ["hazard_id"], unique=False)
