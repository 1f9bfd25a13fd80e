# RDS PostgreSQL for tradeloop's store and MLflow's backend: private subnets only, no public
# address, encrypted with the key, Multi-AZ, the master password kept by Secrets Manager.
# Put the URLs into the cluster's tradeloop-db Secret (db-url, mlflow-db-url).
resource "aws_db_subnet_group" "tradeloop" {
  name       = local.name
  subnet_ids = var.private_subnet_ids
}

resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "PostgreSQL from the EKS cluster only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "PostgreSQL from the cluster's nodes and pods"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_eks_cluster.tradeloop.vpc_config[0].cluster_security_group_id]
  }
}

resource "aws_db_parameter_group" "tradeloop" {
  name   = local.name
  family = "postgres16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
}

data "aws_iam_policy_document" "assume_monitoring" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${local.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.assume_monitoring.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "tradeloop" {
  identifier                            = local.name
  engine                                = "postgres"
  engine_version                        = "16"
  instance_class                        = var.db_instance_class
  allocated_storage                     = 50
  max_allocated_storage                 = 500
  db_name                               = "tradeloop"
  username                              = "tradeloop"
  manage_master_user_password           = true
  master_user_secret_kms_key_id         = aws_kms_key.tradeloop.arn
  db_subnet_group_name                  = aws_db_subnet_group.tradeloop.name
  vpc_security_group_ids                = [aws_security_group.db.id]
  parameter_group_name                  = aws_db_parameter_group.tradeloop.name
  publicly_accessible                   = false
  storage_encrypted                     = true
  kms_key_id                            = aws_kms_key.tradeloop.arn
  multi_az                              = true
  backup_retention_period               = 14
  deletion_protection                   = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${local.name}-final"
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.tradeloop.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
}
