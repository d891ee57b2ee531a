"""The fair's set-up hours (the day before it opens), for the cooperatives' reminder

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fairs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("setup_hours", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fairs", schema=None) as batch_op:
        batch_op.drop_column("setup_hours")
