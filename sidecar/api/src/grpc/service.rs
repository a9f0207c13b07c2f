//! The `Dapr` service trait implementation. The state, metadata and shutdown methods
//! delegate to the building blocks; every API whose building block has not landed yet
//! answers `UNIMPLEMENTED` with a clear message instead of pretending to work.

use std::pin::Pin;

use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as pb;
use dapr::dapr::proto::runtime::v1::dapr_server::Dapr;
use futures::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::DaprGrpc;
use blocks::errors::DaprError;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn unimplemented(method: &str) -> Status {
    super::status::to_status(&DaprError::not_implemented(method))
}

/// Writes the trait impl: the given methods verbatim, plus an `UNIMPLEMENTED` body for
/// each listed unary method. The whole impl is produced here so `async_trait` sees the
/// expanded methods.
macro_rules! dapr_service {
    (
        implemented { $($item:item)* }
        not_yet { $($name:ident($req:ty) -> $resp:ty;)* }
    ) => {
        #[tonic::async_trait]
        impl Dapr for DaprGrpc {
            $($item)*
            $(
                async fn $name(&self, _request: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

dapr_service! {
    implemented {
        async fn invoke_service(
            &self,
            r: Request<pb::InvokeServiceRequest>,
        ) -> Result<Response<common::InvokeResponse>, Status> {
            self.invoke_service_impl(r).await
        }

        async fn get_state(&self, r: Request<pb::GetStateRequest>) -> Result<Response<pb::GetStateResponse>, Status> {
            super::spans::annotate_state("/dapr.proto.runtime.v1.Dapr/GetState", &r.get_ref().store_name);
            self.get_state_impl(r.into_inner()).await.map(Response::new)
        }

        async fn get_bulk_state(
            &self,
            r: Request<pb::GetBulkStateRequest>,
        ) -> Result<Response<pb::GetBulkStateResponse>, Status> {
            self.get_bulk_state_impl(r.into_inner()).await.map(Response::new)
        }

        async fn save_state(&self, r: Request<pb::SaveStateRequest>) -> Result<Response<()>, Status> {
            super::spans::annotate_state("/dapr.proto.runtime.v1.Dapr/SaveState", &r.get_ref().store_name);
            self.save_state_impl(r.into_inner()).await.map(Response::new)
        }

        async fn query_state_alpha1(
            &self,
            r: Request<pb::QueryStateRequest>,
        ) -> Result<Response<pb::QueryStateResponse>, Status> {
            self.query_state_impl(r.into_inner()).await.map(Response::new)
        }

        async fn delete_state(&self, r: Request<pb::DeleteStateRequest>) -> Result<Response<()>, Status> {
            super::spans::annotate_state("/dapr.proto.runtime.v1.Dapr/DeleteState", &r.get_ref().store_name);
            self.delete_state_impl(r.into_inner()).await.map(Response::new)
        }

        async fn delete_bulk_state(&self, r: Request<pb::DeleteBulkStateRequest>) -> Result<Response<()>, Status> {
            self.delete_bulk_state_impl(r.into_inner()).await.map(Response::new)
        }

        async fn execute_state_transaction(
            &self,
            r: Request<pb::ExecuteStateTransactionRequest>,
        ) -> Result<Response<()>, Status> {
            self.execute_state_transaction_impl(r.into_inner()).await.map(Response::new)
        }

        async fn get_metadata(
            &self,
            _r: Request<pb::GetMetadataRequest>,
        ) -> Result<Response<pb::GetMetadataResponse>, Status> {
            Ok(Response::new(self.get_metadata_impl().await))
        }

        async fn set_metadata(&self, r: Request<pb::SetMetadataRequest>) -> Result<Response<()>, Status> {
            let r = r.into_inner();
            self.api.metadata.set(&r.key, r.value);
            Ok(Response::new(()))
        }

        async fn publish_event(&self, r: Request<pb::PublishEventRequest>) -> Result<Response<()>, Status> {
            self.publish_event_impl(r.into_inner()).await.map(Response::new)
        }

        async fn bulk_publish_event(
            &self,
            r: Request<pb::BulkPublishRequest>,
        ) -> Result<Response<pb::BulkPublishResponse>, Status> {
            self.bulk_publish_impl(r.into_inner()).await.map(Response::new)
        }

        async fn bulk_publish_event_alpha1(
            &self,
            r: Request<pb::BulkPublishRequest>,
        ) -> Result<Response<pb::BulkPublishResponse>, Status> {
            self.bulk_publish_impl(r.into_inner()).await.map(Response::new)
        }

        async fn invoke_binding(
            &self,
            r: Request<pb::InvokeBindingRequest>,
        ) -> Result<Response<pb::InvokeBindingResponse>, Status> {
            self.invoke_binding_impl(r.into_inner()).await.map(Response::new)
        }

        async fn shutdown(&self, r: Request<pb::ShutdownRequest>) -> Result<Response<()>, Status> {
            let value = r.metadata().get(crate::FORCE_SHUTDOWN).map(|v| v.as_bytes());
            if crate::forces_shutdown(value) {
                self.api.request_forced_shutdown();
            } else {
                self.api.request_shutdown();
            }
            Ok(Response::new(()))
        }

        type SubscribeTopicEventsAlpha1Stream = super::subscribe::EventStream;

        async fn subscribe_topic_events_alpha1(
            &self,
            r: Request<Streaming<pb::SubscribeTopicEventsRequestAlpha1>>,
        ) -> Result<Response<Self::SubscribeTopicEventsAlpha1Stream>, Status> {
            self.subscribe_topic_events_impl(r.into_inner()).await.map(Response::new)
        }

        type SubscribeConfigurationAlpha1Stream = BoxStream<pb::SubscribeConfigurationResponse>;

        async fn subscribe_configuration_alpha1(
            &self,
            _r: Request<pb::SubscribeConfigurationRequest>,
        ) -> Result<Response<Self::SubscribeConfigurationAlpha1Stream>, Status> {
            Err(unimplemented("subscribe_configuration_alpha1"))
        }

        type SubscribeConfigurationStream = BoxStream<pb::SubscribeConfigurationResponse>;

        async fn subscribe_configuration(
            &self,
            _r: Request<pb::SubscribeConfigurationRequest>,
        ) -> Result<Response<Self::SubscribeConfigurationStream>, Status> {
            Err(unimplemented("subscribe_configuration"))
        }

        type EncryptAlpha1Stream = BoxStream<pb::EncryptResponse>;

        async fn encrypt_alpha1(
            &self,
            _r: Request<Streaming<pb::EncryptRequest>>,
        ) -> Result<Response<Self::EncryptAlpha1Stream>, Status> {
            Err(unimplemented("encrypt_alpha1"))
        }

        type DecryptAlpha1Stream = BoxStream<pb::DecryptResponse>;

        async fn decrypt_alpha1(
            &self,
            _r: Request<Streaming<pb::DecryptRequest>>,
        ) -> Result<Response<Self::DecryptAlpha1Stream>, Status> {
            Err(unimplemented("decrypt_alpha1"))
        }
    }
    not_yet {
        get_secret(pb::GetSecretRequest) -> pb::GetSecretResponse;
        get_bulk_secret(pb::GetBulkSecretRequest) -> pb::GetBulkSecretResponse;
        register_actor_timer(pb::RegisterActorTimerRequest) -> ();
        unregister_actor_timer(pb::UnregisterActorTimerRequest) -> ();
        register_actor_reminder(pb::RegisterActorReminderRequest) -> ();
        unregister_actor_reminder(pb::UnregisterActorReminderRequest) -> ();
        unregister_actor_reminders_by_type(pb::UnregisterActorRemindersByTypeRequest) -> pb::UnregisterActorRemindersByTypeResponse;
        list_actor_reminders(pb::ListActorRemindersRequest) -> pb::ListActorRemindersResponse;
        get_actor_state(pb::GetActorStateRequest) -> pb::GetActorStateResponse;
        get_actor_reminder(pb::GetActorReminderRequest) -> pb::GetActorReminderResponse;
        execute_actor_state_transaction(pb::ExecuteActorStateTransactionRequest) -> ();
        invoke_actor(pb::InvokeActorRequest) -> pb::InvokeActorResponse;
        get_configuration_alpha1(pb::GetConfigurationRequest) -> pb::GetConfigurationResponse;
        get_configuration(pb::GetConfigurationRequest) -> pb::GetConfigurationResponse;
        unsubscribe_configuration_alpha1(pb::UnsubscribeConfigurationRequest) -> pb::UnsubscribeConfigurationResponse;
        unsubscribe_configuration(pb::UnsubscribeConfigurationRequest) -> pb::UnsubscribeConfigurationResponse;
        try_lock_alpha1(pb::TryLockRequest) -> pb::TryLockResponse;
        unlock_alpha1(pb::UnlockRequest) -> pb::UnlockResponse;
        subtle_get_key_alpha1(pb::SubtleGetKeyRequest) -> pb::SubtleGetKeyResponse;
        subtle_encrypt_alpha1(pb::SubtleEncryptRequest) -> pb::SubtleEncryptResponse;
        subtle_decrypt_alpha1(pb::SubtleDecryptRequest) -> pb::SubtleDecryptResponse;
        subtle_wrap_key_alpha1(pb::SubtleWrapKeyRequest) -> pb::SubtleWrapKeyResponse;
        subtle_unwrap_key_alpha1(pb::SubtleUnwrapKeyRequest) -> pb::SubtleUnwrapKeyResponse;
        subtle_sign_alpha1(pb::SubtleSignRequest) -> pb::SubtleSignResponse;
        subtle_verify_alpha1(pb::SubtleVerifyRequest) -> pb::SubtleVerifyResponse;
        start_workflow_alpha1(pb::StartWorkflowRequest) -> pb::StartWorkflowResponse;
        get_workflow_alpha1(pb::GetWorkflowRequest) -> pb::GetWorkflowResponse;
        purge_workflow_alpha1(pb::PurgeWorkflowRequest) -> ();
        terminate_workflow_alpha1(pb::TerminateWorkflowRequest) -> ();
        pause_workflow_alpha1(pb::PauseWorkflowRequest) -> ();
        resume_workflow_alpha1(pb::ResumeWorkflowRequest) -> ();
        raise_event_workflow_alpha1(pb::RaiseEventWorkflowRequest) -> ();
        start_workflow_beta1(pb::StartWorkflowRequest) -> pb::StartWorkflowResponse;
        get_workflow_beta1(pb::GetWorkflowRequest) -> pb::GetWorkflowResponse;
        purge_workflow_beta1(pb::PurgeWorkflowRequest) -> ();
        terminate_workflow_beta1(pb::TerminateWorkflowRequest) -> ();
        pause_workflow_beta1(pb::PauseWorkflowRequest) -> ();
        resume_workflow_beta1(pb::ResumeWorkflowRequest) -> ();
        raise_event_workflow_beta1(pb::RaiseEventWorkflowRequest) -> ();
        schedule_job_alpha1(pb::ScheduleJobRequest) -> pb::ScheduleJobResponse;
        schedule_job(pb::ScheduleJobRequest) -> pb::ScheduleJobResponse;
        get_job_alpha1(pb::GetJobRequest) -> pb::GetJobResponse;
        get_job(pb::GetJobRequest) -> pb::GetJobResponse;
        delete_job_alpha1(pb::DeleteJobRequest) -> pb::DeleteJobResponse;
        delete_job(pb::DeleteJobRequest) -> pb::DeleteJobResponse;
        delete_jobs_by_prefix_alpha1(pb::DeleteJobsByPrefixRequestAlpha1) -> pb::DeleteJobsByPrefixResponseAlpha1;
        delete_jobs_by_prefix(pb::DeleteJobsByPrefixRequest) -> pb::DeleteJobsByPrefixResponse;
        list_jobs_alpha1(pb::ListJobsRequestAlpha1) -> pb::ListJobsResponseAlpha1;
        list_jobs(pb::ListJobsRequest) -> pb::ListJobsResponse;
        converse_alpha1(pb::ConversationRequest) -> pb::ConversationResponse;
        converse_alpha2(pb::ConversationRequestAlpha2) -> pb::ConversationResponseAlpha2;
        create_index_alpha1(pb::CreateIndexRequestAlpha1) -> ();
        get_index_alpha1(pb::GetIndexRequestAlpha1) -> pb::GetIndexResponseAlpha1;
        list_indexes_alpha1(pb::ListIndexesRequestAlpha1) -> pb::ListIndexesResponseAlpha1;
        delete_index_alpha1(pb::DeleteIndexRequestAlpha1) -> ();
        index_documents_alpha1(pb::IndexDocumentsRequestAlpha1) -> pb::IndexDocumentsResponseAlpha1;
        get_documents_alpha1(pb::GetDocumentsRequestAlpha1) -> pb::GetDocumentsResponseAlpha1;
        delete_documents_alpha1(pb::DeleteDocumentsRequestAlpha1) -> pb::DeleteDocumentsResponseAlpha1;
        search_alpha1(pb::SearchRequestAlpha1) -> pb::SearchResponseAlpha1;
        create_collection_alpha1(pb::CreateCollectionRequestAlpha1) -> ();
        get_collection_alpha1(pb::GetCollectionRequestAlpha1) -> pb::GetCollectionResponseAlpha1;
        list_collections_alpha1(pb::ListCollectionsRequestAlpha1) -> pb::ListCollectionsResponseAlpha1;
        delete_collection_alpha1(pb::DeleteCollectionRequestAlpha1) -> ();
        upsert_vectors_alpha1(pb::UpsertVectorsRequestAlpha1) -> pb::UpsertVectorsResponseAlpha1;
        delete_vectors_alpha1(pb::DeleteVectorsRequestAlpha1) -> pb::DeleteVectorsResponseAlpha1;
        get_vectors_alpha1(pb::GetVectorsRequestAlpha1) -> pb::GetVectorsResponseAlpha1;
        query_vectors_alpha1(pb::QueryVectorsRequestAlpha1) -> pb::QueryVectorsResponseAlpha1;
        batch_query_vectors_alpha1(pb::BatchQueryVectorsRequestAlpha1) -> pb::BatchQueryVectorsResponseAlpha1;
    }
}
