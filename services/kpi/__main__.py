from services.kpi.bootstrap import create_app
from shared.http.serve import serve

if __name__ == "__main__":
    serve(create_app, default_port=8002, argv=None)
