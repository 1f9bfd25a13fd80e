-- MLflow's own database next to tradeloop's (same server, same role).
CREATE DATABASE mlflow OWNER tradeloop;
