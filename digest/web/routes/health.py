"""``/health``: the process answers and its database does."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from digest.web.dependencies import EngineDep

router = APIRouter()


@router.get("/health")
def health(engine: EngineDep) -> JSONResponse:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return JSONResponse({"status": "error", "database": str(exc.__class__.__name__)}, 503)
    return JSONResponse({"status": "ok", "database": "ok"})
