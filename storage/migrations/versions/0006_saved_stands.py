"""Stands a visitor saved to their list ("my list")

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_stands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("fair_id", sa.Integer(), nullable=False),
        sa.Column("stand_number", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"],
            name=op.f("fk_saved_stands_contact_id_contacts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["fair_id"], ["fairs.id"], name=op.f("fk_saved_stands_fair_id_fairs"),
            ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_stands")),
        sa.UniqueConstraint("contact_id", "fair_id", "stand_number",
                            name=op.f("uq_saved_stands_contact_id")),
    )


def downgrade() -> None:
    op.drop_table("saved_stands")
