package dynamo

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// tableActiveWithin bounds how long CreateTable waits; creating a table with two GSIs in AWS
// usually takes well under a minute.
const tableActiveWithin = 5 * time.Minute

// CreateTable creates table with cartrelay's layout (on-demand billing, gsi1 and gsi2 projecting
// all attributes, TTL on ttl), waits until it is ACTIVE, and enables TTL. In AWS the table comes
// from template.yaml; this is for DynamoDB Local and for operators pointing the CLI at a local
// endpoint.
//
// It is idempotent: an existing table is checked for the two indexes and gets TTL enabled if it
// lacks it.
func CreateTable(ctx context.Context, client *Client, table string) error {
	type keyElement struct{ AttributeName, KeyType string }
	type attribute struct{ AttributeName, AttributeType string }
	type projection struct{ ProjectionType string }
	type gsi struct {
		IndexName  string
		KeySchema  []keyElement
		Projection projection
	}
	index := func(name, pk, sk string) gsi {
		return gsi{IndexName: name, KeySchema: []keyElement{{pk, "HASH"}, {sk, "RANGE"}}, Projection: projection{"ALL"}}
	}
	var attrs []attribute
	for _, a := range []string{AttrPK, AttrSK, AttrGSI1PK, AttrGSI1SK, AttrGSI2PK, AttrGSI2SK} {
		attrs = append(attrs, attribute{a, "S"})
	}
	err := client.api.Call(ctx, "CreateTable", struct {
		TableName              string
		BillingMode            string
		AttributeDefinitions   []attribute
		KeySchema              []keyElement
		GlobalSecondaryIndexes []gsi
	}{
		TableName:              table,
		BillingMode:            "PAY_PER_REQUEST",
		AttributeDefinitions:   attrs,
		KeySchema:              []keyElement{{AttrPK, "HASH"}, {AttrSK, "RANGE"}},
		GlobalSecondaryIndexes: []gsi{index(IndexGSI1, AttrGSI1PK, AttrGSI1SK), index(IndexGSI2, AttrGSI2PK, AttrGSI2SK)},
	}, &struct{}{})
	if err != nil && errorCode(err) != "ResourceInUseException" {
		return fmt.Errorf("create DynamoDB table %s: %w", table, err)
	}
	desc, err := waitActive(ctx, client, table)
	if err != nil {
		return err
	}
	if err := checkLayout(table, desc); err != nil {
		return err
	}
	return enableTTL(ctx, client, table)
}

// tableDescription is what CreateTable reads of DescribeTable's answer.
type tableDescription struct {
	TableStatus            string
	GlobalSecondaryIndexes []struct{ IndexName string }
}

// waitActive polls DescribeTable until the table is ACTIVE, as the SDK's TableExists waiter
// does: a table not found yet is waited for too.
func waitActive(ctx context.Context, client *Client, table string) (*tableDescription, error) {
	ctx, cancel := context.WithTimeout(ctx, tableActiveWithin)
	defer cancel()
	delay := time.Second
	for {
		var out struct{ Table *tableDescription }
		err := client.api.Call(ctx, "DescribeTable", struct{ TableName string }{table}, &out)
		switch {
		case err == nil && out.Table != nil && out.Table.TableStatus == "ACTIVE":
			return out.Table, nil
		case err != nil && errorCode(err) != "ResourceNotFoundException":
			return nil, fmt.Errorf("wait for DynamoDB table %s to become active: %w", table, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("wait for DynamoDB table %s to become active: %w", table, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// checkLayout refuses a table that exists under the name but was not made for cartrelay, which
// would otherwise fail later on the first GSI query.
func checkLayout(table string, d *tableDescription) error {
	var have []string
	for _, g := range d.GlobalSecondaryIndexes {
		have = append(have, g.IndexName)
	}
	for _, want := range []string{IndexGSI1, IndexGSI2} {
		if !slices.Contains(have, want) {
			return fmt.Errorf("DynamoDB table %s exists without index %s (it has %v); it was not created for cartrelay", table, want, have)
		}
	}
	return nil
}

func enableTTL(ctx context.Context, client *Client, table string) error {
	var ttl struct {
		TimeToLiveDescription *struct{ TimeToLiveStatus, AttributeName string }
	}
	if err := client.api.Call(ctx, "DescribeTimeToLive", struct{ TableName string }{table}, &ttl); err != nil {
		return fmt.Errorf("read TTL setting of DynamoDB table %s: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case "ENABLED", "ENABLING":
			if d.AttributeName != AttrTTL {
				return fmt.Errorf("DynamoDB table %s expires items by attribute %q; cartrelay needs %q", table, d.AttributeName, AttrTTL)
			}
			return nil
		}
	}
	type spec struct {
		AttributeName string
		Enabled       bool
	}
	err := client.api.Call(ctx, "UpdateTimeToLive", struct {
		TableName               string
		TimeToLiveSpecification spec
	}{table, spec{AttrTTL, true}}, &struct{}{})
	if err != nil {
		return fmt.Errorf("enable TTL on attribute %s of DynamoDB table %s: %w", AttrTTL, table, err)
	}
	return nil
}
