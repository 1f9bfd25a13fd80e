# The retraining trigger path: anything publishes to the Pub/Sub topic (Cloud Scheduler on
# retrain_schedule here, Cloud Monitoring alerts, a CI job); Eventarc runs a Workflow per
# message, which POSTs to the gateway's /v1/retrain with the message id as the request id
# (so Pub/Sub's at-least-once redelivery trains once) and the operator token from Secret
# Manager.
resource "google_pubsub_topic" "retrain" {
  name         = "${local.name}-retrain"
  kms_key_name = google_kms_crypto_key.tradeloop.id
  labels       = local.labels
  depends_on   = [google_kms_crypto_key_iam_member.agents]
}

resource "google_secret_manager_secret" "retrain_token" {
  secret_id = "${local.name}-retrain-token"
  labels    = local.labels
  replication {
    user_managed {
      replicas {
        location = var.region
        customer_managed_encryption {
          kms_key_name = google_kms_crypto_key.tradeloop.id
        }
      }
    }
  }
}

resource "google_secret_manager_secret_version" "retrain_token" {
  secret      = google_secret_manager_secret.retrain_token.id
  secret_data = var.retrain_token
}

resource "google_service_account" "retrain" {
  account_id   = "${local.name}-retrain"
  display_name = "tradeloop retraining trigger (Eventarc and Workflows)"
}

resource "google_secret_manager_secret_iam_member" "retrain" {
  secret_id = google_secret_manager_secret.retrain_token.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.retrain.email}"
}

resource "google_project_iam_member" "retrain" {
  for_each = toset(["roles/workflows.invoker", "roles/eventarc.eventReceiver"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.retrain.email}"
}

resource "google_workflows_workflow" "retrain" {
  name            = "${local.name}-retrain"
  region          = var.region
  service_account = google_service_account.retrain.id
  crypto_key_name = google_kms_crypto_key.tradeloop.id
  labels          = local.labels
  source_contents = <<-YAML
    main:
      params: [event]
      steps:
        - token:
            call: googleapis.secretmanager.v1.projects.secrets.versions.accessString
            args:
              secret_id: ${google_secret_manager_secret.retrain_token.secret_id}
            result: token
        - post:
            call: http.post
            args:
              url: ${var.retrain_endpoint}
              headers:
                Authorization: $${"Bearer " + token}
              body:
                id: $${"pubsub:" + event.data.message.messageId}
                reason: $${"Pub/Sub ${google_pubsub_topic.retrain.name} message " + event.data.message.messageId}
            result: answer
        - done:
            return: $${answer.body}
  YAML
}

resource "google_eventarc_trigger" "retrain" {
  name            = "${local.name}-retrain"
  location        = var.region
  service_account = google_service_account.retrain.email
  labels          = local.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  transport {
    pubsub {
      topic = google_pubsub_topic.retrain.id
    }
  }

  destination {
    workflow = google_workflows_workflow.retrain.id
  }
}

resource "google_cloud_scheduler_job" "retrain" {
  count    = var.retrain_schedule == null ? 0 : 1
  name     = "${local.name}-retrain"
  region   = var.region
  schedule = var.retrain_schedule

  pubsub_target {
    topic_name = google_pubsub_topic.retrain.id
    data       = base64encode("scheduled retraining")
  }
}
