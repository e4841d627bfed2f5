package sqs

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/cartrelay/cartrelay/shared/awsjson"
)

// The adapter calls SQS's AWS JSON 1.0 API through shared/awsjson rather than the SDK's SQS
// client, whose model (the schemas of all its operations, built at start and kept by the
// linker) would otherwise be part of every Lambda bootstrap. The request and answer shapes
// below hold the members of each operation that cartrelay uses, named as in the SQS API
// Reference; members of an answer that are not listed here are not read.

// service is Amazon SQS as shared/awsjson calls it.
var service = awsjson.Service{
	Name:    "sqs",
	Target:  "AmazonSQS",
	Version: "1.0",
	// A ReceiveMessage answer holds up to queue.MaxBatch messages, each with a body and
	// attributes of up to queue.MaxBodyBytes together, as JSON strings that could escape every
	// byte (\u00XX, six bytes): 15 MiB, and 16 MiB leaves room for the rest of the answer.
	MaxAnswer: 16 << 20,
}

// NewClient returns the SQS client that New and Ensure take, configured from cfg as the SDK's
// own client would be: region, credentials, HTTP client, retryer and endpoint
// (AWS_ENDPOINT_URL_SQS or AWS_ENDPOINT_URL when set).
func NewClient(cfg aws.Config) *awsjson.Client {
	return awsjson.New(cfg, service)
}

// Client calls one SQS operation; *awsjson.Client of Service is the one to use.
type Client interface {
	Call(ctx context.Context, op string, in, out any) error
}

var _ Client = (*awsjson.Client)(nil)

type attributeValue struct {
	DataType    string
	StringValue *string `json:",omitempty"`
}

type sendMessageBatchInput struct {
	QueueUrl string
	Entries  []sendMessageBatchEntry
}

type sendMessageBatchEntry struct {
	Id                     string
	MessageBody            string
	MessageAttributes      map[string]attributeValue `json:",omitempty"`
	MessageGroupId         string                    `json:",omitempty"`
	MessageDeduplicationId string                    `json:",omitempty"`
}

type sendMessageBatchOutput struct {
	Successful []struct {
		Id               string
		MessageId        string
		MD5OfMessageBody string
	}
	Failed []struct {
		Id          string
		Code        string
		Message     string
		SenderFault bool
	}
}

type receiveMessageInput struct {
	QueueUrl            string
	MaxNumberOfMessages int `json:",omitempty"`
	WaitTimeSeconds     int `json:",omitempty"`
	// Omitted when zero, which leaves the queue's own visibility timeout in force.
	VisibilityTimeout           int `json:",omitempty"`
	MessageSystemAttributeNames []string
	MessageAttributeNames       []string
}

type message struct {
	MessageId         string
	ReceiptHandle     string
	MD5OfBody         string
	Body              string
	Attributes        map[string]string
	MessageAttributes map[string]attributeValue
}

type receiveMessageOutput struct {
	Messages []message
}

type deleteMessageInput struct {
	QueueUrl      string
	ReceiptHandle string
}

type changeMessageVisibilityInput struct {
	QueueUrl      string
	ReceiptHandle string
	// Always sent: 0 makes the message visible now.
	VisibilityTimeout int
}

type getQueueAttributesInput struct {
	QueueUrl       string
	AttributeNames []string
}

type queueAttributes struct {
	Attributes map[string]string
}

type createQueueInput struct {
	QueueName  string
	Attributes map[string]string
}

type getQueueURLInput struct {
	QueueName string
}

type queueURL struct {
	QueueUrl string
}

type setQueueAttributesInput struct {
	QueueUrl   string
	Attributes map[string]string
}

// noOutput is the answer of an operation without output.
type noOutput struct{}

// System attributes a message is received with, and queue attributes cartrelay reads or sets.
const (
	attrReceiveCount      = "ApproximateReceiveCount"
	attrSentTimestamp     = "SentTimestamp"
	attrFirstReceive      = "ApproximateFirstReceiveTimestamp"
	attrGroupID           = "MessageGroupId"
	attrDedupID           = "MessageDeduplicationId"
	attrVisible           = "ApproximateNumberOfMessages"
	attrInFlight          = "ApproximateNumberOfMessagesNotVisible"
	attrDelayed           = "ApproximateNumberOfMessagesDelayed"
	attrQueueARN          = "QueueArn"
	attrVisibilityTimeout = "VisibilityTimeout"
	attrRetention         = "MessageRetentionPeriod"
	attrRedrivePolicy     = "RedrivePolicy"
	attrFIFO              = "FifoQueue"
	attrContentDedup      = "ContentBasedDeduplication"
)

// bodyMD5 is the digest SQS returns for a message body (MD5OfMessageBody, MD5OfBody): the hex
// MD5 of its UTF-8 bytes.
func bodyMD5(body string) string {
	sum := md5.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

// errorCode is SQS's code for err, or RequestFailed when SQS gave none (a network error).
func errorCode(err error) string {
	var apiErr *awsjson.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return "RequestFailed"
}
