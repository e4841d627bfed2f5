package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	str := types.ScalarAttributeTypeS
	gsi := func(name, pk, sk string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{
			IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(pk), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(sk), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}
	}
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: str},
			{AttributeName: aws.String(AttrSK), AttributeType: str},
			{AttributeName: aws.String(AttrGSI1PK), AttributeType: str},
			{AttributeName: aws.String(AttrGSI1SK), AttributeType: str},
			{AttributeName: aws.String(AttrGSI2PK), AttributeType: str},
			{AttributeName: aws.String(AttrGSI2SK), AttributeType: str},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			gsi(IndexGSI1, AttrGSI1PK, AttrGSI1SK),
			gsi(IndexGSI2, AttrGSI2PK, AttrGSI2SK),
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create DynamoDB table %s: %w", table, err)
	}

	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 10*time.Second
	})
	desc, err := waiter.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableActiveWithin)
	if err != nil {
		return fmt.Errorf("wait for DynamoDB table %s to become active: %w", table, err)
	}
	if err := checkLayout(table, desc.Table); err != nil {
		return err
	}
	return enableTTL(ctx, client, table)
}

// checkLayout refuses a table that exists under the name but was not made for cartrelay, which
// would otherwise fail later on the first GSI query.
func checkLayout(table string, d *types.TableDescription) error {
	if d == nil {
		return fmt.Errorf("DynamoDB table %s: no description returned", table)
	}
	var have []string
	for _, g := range d.GlobalSecondaryIndexes {
		have = append(have, aws.ToString(g.IndexName))
	}
	for _, want := range []string{IndexGSI1, IndexGSI2} {
		if !slices.Contains(have, want) {
			return fmt.Errorf("DynamoDB table %s exists without index %s (it has %v); it was not created for cartrelay", table, want, have)
		}
	}
	return nil
}

func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("read TTL setting of DynamoDB table %s: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if attr := aws.ToString(d.AttributeName); attr != AttrTTL {
				return fmt.Errorf("DynamoDB table %s expires items by attribute %q; cartrelay needs %q", table, attr, AttrTTL)
			}
			return nil
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(AttrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on attribute %s of DynamoDB table %s: %w", AttrTTL, table, err)
	}
	return nil
}
