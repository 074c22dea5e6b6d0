"""One APIRouter per area of the API; ``api.app.create_app`` includes them."""
