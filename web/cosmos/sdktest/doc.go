// Package sdktest runs the official Go SDK for Azure Cosmos DB (azcosmos)
// against a real edgenode process serving the Cosmos DB API. It holds tests
// only: the SDK is a test dependency and is linked into no binary.
package sdktest
