"""The catalogue's practical answers; what people asked, counted per intent; what was not
understood, counted per question

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "info_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fair_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("topic", sa.JSON(), nullable=True),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fair_id"], ["fairs.id"],
                                name=op.f("fk_info_answers_fair_id_fairs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_info_answers")),
        sa.UniqueConstraint("fair_id", "key", name=op.f("uq_info_answers_fair_id")),
    )
    op.create_table(
        "intent_counts",
        sa.Column("fair_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("intent", sa.String(length=32), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["fair_id"], ["fairs.id"],
                                name=op.f("fk_intent_counts_fair_id_fairs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fair_id", "day", "channel", "language", "intent",
                                name=op.f("pk_intent_counts")),
    )
    op.create_table(
        "unanswered_questions",
        sa.Column("fair_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("question", sa.String(length=200), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["fair_id"], ["fairs.id"],
                                name=op.f("fk_unanswered_questions_fair_id_fairs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("fair_id", "day", "question",
                                name=op.f("pk_unanswered_questions")),
    )


def downgrade() -> None:
    op.drop_table("unanswered_questions")
    op.drop_table("intent_counts")
    op.drop_table("info_answers")
