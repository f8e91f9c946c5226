"""An ordinary FastAPI app, served by Gannet unchanged (tests/e2e/test_frameworks.py)."""
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, Field

app = FastAPI(title="gannet-test")


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


def current_user(x_token: Annotated[str | None, Header()] = None) -> str:
    if x_token != "secret":
        raise HTTPException(status_code=401, detail="bad token")
    return "alice"


@app.get("/users/{user_id}")
async def get_user(user_id: int, verbose: Annotated[bool, Query()] = False) -> dict:
    return {"user_id": user_id, "verbose": verbose}


@app.post("/items", status_code=201)
async def create_item(item: Item) -> dict:
    return {"created": item.model_dump(), "total": round(item.price * 1.2, 2)}


@app.get("/me")
def me(user: Annotated[str, Depends(current_user)]) -> dict:  # sync: runs in FastAPI's threadpool
    return {"user": user}
