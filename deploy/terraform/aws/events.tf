# The retraining trigger path: an EventBridge rule (a schedule here; any rule on the bus can
# target it) calls the gateway's POST /v1/retrain through an API destination. The event id
# becomes the request id, so EventBridge's at-least-once retries train once.
resource "aws_cloudwatch_event_connection" "tradeloop" {
  name               = "${local.name}-retrain"
  authorization_type = "API_KEY"
  auth_parameters {
    api_key {
      key   = "Authorization"
      value = "Bearer ${var.retrain_token}"
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "retrain" {
  name                             = "${local.name}-retrain"
  connection_arn                   = aws_cloudwatch_event_connection.tradeloop.arn
  invocation_endpoint              = var.retrain_endpoint
  http_method                      = "POST"
  invocation_rate_limit_per_second = 1
}

resource "aws_sqs_queue" "retrain_dlq" {
  name                      = "${local.name}-retrain-dlq"
  kms_master_key_id         = aws_kms_key.tradeloop.arn
  message_retention_seconds = 1209600
}

resource "aws_cloudwatch_event_rule" "retrain" {
  count               = var.retrain_schedule == null ? 0 : 1
  name                = "${local.name}-retrain"
  description         = "Ask tradeloop for a retraining run"
  schedule_expression = var.retrain_schedule
}

data "aws_iam_policy_document" "assume_events" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "events" {
  name               = "${local.name}-retrain-events"
  assume_role_policy = data.aws_iam_policy_document.assume_events.json
}

data "aws_iam_policy_document" "events_invoke" {
  statement {
    actions   = ["events:InvokeApiDestination"]
    resources = [aws_cloudwatch_event_api_destination.retrain.arn]
  }
}

resource "aws_iam_role_policy" "events_invoke" {
  name   = "invoke-retrain"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events_invoke.json
}

resource "aws_cloudwatch_event_target" "retrain" {
  count    = var.retrain_schedule == null ? 0 : 1
  rule     = aws_cloudwatch_event_rule.retrain[0].name
  arn      = aws_cloudwatch_event_api_destination.retrain.arn
  role_arn = aws_iam_role.events.arn

  input_transformer {
    input_paths = { id = "$.id", time = "$.time" }
    input_template = jsonencode({
      id     = "eventbridge:<id>"
      reason = "EventBridge rule ${local.name}-retrain at <time>"
    })
  }

  retry_policy {
    maximum_retry_attempts       = 10
    maximum_event_age_in_seconds = 3600
  }

  dead_letter_config {
    arn = aws_sqs_queue.retrain_dlq.arn
  }
}
