package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/cartrelay/cartrelay/shared/queue"
)

// EnvVar is the environment variable that holds a logical queue's URL in Lambda, as
// template.yaml sets it: QUEUE_URL_INGEST, QUEUE_URL_INGEST_DLQ, and so on.
func EnvVar(name string) string {
	return "QUEUE_URL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// URLsFromEnv reads the URL of every queue of topo from its EnvVar.
//
// All of them are required: a function that lacks one it never uses costs nothing, while one
// that lacks a queue it needs would otherwise fail only on its first message.
func URLsFromEnv(topo queue.Topology, getenv func(string) string) (map[string]string, error) {
	urls := map[string]string{}
	var missing []string
	for _, name := range topo.Names() {
		v := strings.TrimSpace(getenv(EnvVar(name)))
		if v == "" {
			missing = append(missing, EnvVar(name))
			continue
		}
		urls[name] = v
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("queue URLs missing from the environment: %s", strings.Join(missing, ", "))
	}
	return urls, nil
}

// Retention matches template.yaml: sources keep messages 4 days, DLQs the maximum 14.
const (
	sourceRetentionSeconds = 4 * 24 * 3600
	dlqRetentionSeconds    = 14 * 24 * 3600
)

// PhysicalName is the SQS queue name of a logical queue under prefix: FIFO queues end in ".fifo".
func PhysicalName(topo queue.Topology, prefix, name string) (string, error) {
	spec, ok := topo.SpecFor(name)
	if !ok {
		return "", topo.ValidateMessages(name, nil)
	}
	n := prefix + name
	if spec.FIFO {
		n += ".fifo"
	}
	return n, nil
}

// Ensure creates every queue of topo under prefix, each DLQ before its source so
// that the source's RedrivePolicy can name it, and returns the logical name → URL map for New.
// Queues that exist already are brought to the same attributes, so it can be run again.
func Ensure(ctx context.Context, client Client, topo queue.Topology, prefix string) (map[string]string, error) {
	if err := checkPrefix(topo, prefix); err != nil {
		return nil, err
	}
	urls := map[string]string{}
	for _, spec := range topo {
		visibility := strconv.Itoa(int(spec.VisibilityTimeout.Seconds()))
		dlqAttrs := map[string]string{
			attrVisibilityTimeout: visibility,
			attrRetention:         strconv.Itoa(dlqRetentionSeconds),
		}
		dlqURL, err := ensureQueue(ctx, client, topo, prefix, spec.DLQ(), spec.FIFO, dlqAttrs)
		if err != nil {
			return nil, err
		}
		arn, err := queueARN(ctx, client, dlqURL)
		if err != nil {
			return nil, fmt.Errorf("create queue %s: %w", spec.Name, err)
		}
		redrive, err := json.Marshal(map[string]string{
			"deadLetterTargetArn": arn,
			"maxReceiveCount":     strconv.Itoa(spec.MaxReceiveCount),
		})
		if err != nil {
			return nil, fmt.Errorf("create queue %s: redrive policy: %w", spec.Name, err)
		}
		srcAttrs := map[string]string{
			attrVisibilityTimeout: visibility,
			attrRetention:         strconv.Itoa(sourceRetentionSeconds),
			attrRedrivePolicy:     string(redrive),
		}
		srcURL, err := ensureQueue(ctx, client, topo, prefix, spec.Name, spec.FIFO, srcAttrs)
		if err != nil {
			return nil, err
		}
		urls[spec.Name], urls[spec.DLQ()] = srcURL, dlqURL
	}
	return urls, nil
}

func ensureQueue(ctx context.Context, client Client, topo queue.Topology, prefix, name string, fifo bool, attrs map[string]string) (string, error) {
	physical, err := PhysicalName(topo, prefix, name)
	if err != nil {
		return "", err
	}
	create := maps.Clone(attrs)
	if fifo {
		create[attrFIFO] = "true"
		// Deduplication ids are the fact ids cartrelay sets; the body is not a reliable key.
		create[attrContentDedup] = "false"
	}
	var out queueURL
	err = client.Call(ctx, "CreateQueue", createQueueInput{QueueName: physical, Attributes: create}, &out)
	if err == nil {
		if out.QueueUrl == "" {
			return "", fmt.Errorf("create SQS queue %s: SQS returned no queue URL", physical)
		}
		return out.QueueUrl, nil
	}
	// QueueNameExists is the JSON API's name for it, QueueAlreadyExists the query API's code.
	if code := errorCode(err); code != "QueueNameExists" && code != "QueueAlreadyExists" {
		return "", fmt.Errorf("create SQS queue %s: %w", physical, err)
	}
	// It exists with other attributes (an older topology): bring it up to date. FifoQueue
	// cannot change, and a mismatch there fails below with SQS's own message.
	if err := client.Call(ctx, "GetQueueUrl", getQueueURLInput{QueueName: physical}, &out); err != nil {
		return "", fmt.Errorf("find existing SQS queue %s: %w", physical, err)
	}
	if out.QueueUrl == "" {
		return "", fmt.Errorf("find existing SQS queue %s: SQS returned no queue URL", physical)
	}
	if err := client.Call(ctx, "SetQueueAttributes", setQueueAttributesInput{QueueUrl: out.QueueUrl, Attributes: attrs}, &noOutput{}); err != nil {
		return "", fmt.Errorf("update existing SQS queue %s: %w", physical, err)
	}
	return out.QueueUrl, nil
}

func queueARN(ctx context.Context, client Client, url string) (string, error) {
	var out queueAttributes
	if err := client.Call(ctx, "GetQueueAttributes", getQueueAttributesInput{QueueUrl: url, AttributeNames: []string{attrQueueARN}}, &out); err != nil {
		return "", fmt.Errorf("read the ARN of %s: %w", url, err)
	}
	arn := out.Attributes[attrQueueARN]
	if arn == "" {
		return "", fmt.Errorf("SQS returned no ARN for %s", url)
	}
	return arn, nil
}

// checkPrefix applies SQS's rule for queue names (letters, digits, - and _, at most 80
// characters with ".fifo") to the longest name the prefix will produce.
func checkPrefix(topo queue.Topology, prefix string) error {
	longest := 0
	for _, name := range topo.Names() {
		n, _ := PhysicalName(topo, prefix, name)
		longest = max(longest, len(n))
	}
	if longest > 80 {
		return fmt.Errorf("queue prefix %q is too long: the longest queue name would have %d characters, over SQS's 80", prefix, longest)
	}
	for _, c := range prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("queue prefix %q may hold only letters, digits, - and _ (SQS's rule for queue names)", prefix)
		}
	}
	return nil
}
