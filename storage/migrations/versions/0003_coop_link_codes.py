"""Cooperative link codes on exhibitors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exhibitors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_code", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_exhibitors_link_code"), ["link_code"])


def downgrade() -> None:
    with op.batch_alter_table("exhibitors", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_exhibitors_link_code"), type_="unique")
        batch_op.drop_column("link_code")
