"""`GET /v1/models`: the models this deployment serves, in OpenAI's shape, for tenant keys.

A model is listed when the router configuration names it (a route) or the price book prices
it (requests for it go to the default route and are costed); `owned_by` is the upstream that
answers it first.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from app.db.engine import transaction
from app.dependencies import provide_tenant
from app.errors import NotFound
from app.ledger.repository import LedgerRepository
from app.services import Services
from app.tenants.auth import Principal


class ModelOut(msgspec.Struct):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelListOut(msgspec.Struct):
    object: Literal["list"]
    data: list[ModelOut]


async def served_models(services: Services) -> list[ModelOut]:
    config = services.router.config
    async with transaction(services.sessionmaker) as session:  # prices are not tenant data
        priced = {price.model for price in await LedgerRepository(session).price_rows()}
    names = {route.model for route in config.routes} | priced
    return [
        ModelOut(id=name, object="model", created=0, owned_by=config.targets_for(name)[0].upstream)
        for name in sorted(names)
    ]


class ModelsController(Controller):
    path = "/v1/models"
    tags = ("models",)
    dependencies = {"tenant": Provide(provide_tenant)}  # noqa: RUF012 (Litestar reads it from the class)

    @get("/", summary="The models this deployment serves (OpenAI's list shape)")
    async def list_models(
        self, tenant: NamedDependency[Principal], services: NamedDependency[Services]
    ) -> ModelListOut:
        return ModelListOut(object="list", data=await served_models(services))

    @get("/{model_id:str}", summary="One served model")
    async def get_model(
        self,
        model_id: FromPath[str],
        tenant: NamedDependency[Principal],
        services: NamedDependency[Services],
    ) -> ModelOut:
        for model in await served_models(services):
            if model.id == model_id:
                return model
        raise NotFound(f"No model {model_id!r} is served here.")
