package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// initErrorType is the error type a failed start reports, in the Category.Reason form that the
// Lambda Runtime API asks for.
const initErrorType = "Runtime.InitError"

// reportInitWithin bounds the report, so that a Runtime API that does not answer cannot keep a
// failed function from exiting.
const reportInitWithin = 2 * time.Second

// reportInitError tells the Lambda Runtime API at api (host:port, AWS_LAMBDA_RUNTIME_API) why
// the function could not start. Lambda then answers the pending invocation with this message
// and type, instead of only "Runtime exited with error: exit status 1", so whoever invoked the
// function learns the cause without searching the logs.
func reportInitError(ctx context.Context, client *http.Client, api string, err error) error {
	ctx, cancel := context.WithTimeout(ctx, reportInitWithin)
	defer cancel()
	body, jerr := json.Marshal(map[string]any{"errorMessage": err.Error(), "errorType": initErrorType, "stackTrace": []string{}})
	if jerr != nil {
		return jerr
	}
	req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if rerr != nil {
		return rerr
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", initErrorType)
	resp, derr := client.Do(req)
	if derr != nil {
		return fmt.Errorf("report the init error to the Lambda Runtime API: %w", derr)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("report the init error to the Lambda Runtime API: it answered %s", resp.Status)
	}
	return nil
}
