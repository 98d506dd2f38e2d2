#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
/* Macros built from other macros do not reach Swift: their values, as constants. */
static const int COPENSSL_EVP_PKEY_PUBLIC_KEY = EVP_PKEY_PUBLIC_KEY;
/* OSSL_PARAM_BLD keeps the name (and a string value) by reference until OSSL_PARAM_BLD_to_param:
   these live for the whole process, unlike the temporary C strings Swift makes for a call. */
static const char *const COPENSSL_PARAM_RSA_N = OSSL_PKEY_PARAM_RSA_N;
static const char *const COPENSSL_PARAM_RSA_E = OSSL_PKEY_PARAM_RSA_E;
static const char *const COPENSSL_PARAM_GROUP_NAME = OSSL_PKEY_PARAM_GROUP_NAME;
static const char *const COPENSSL_PARAM_PUB_KEY = OSSL_PKEY_PARAM_PUB_KEY;
static const char *const COPENSSL_GROUP_P256 = "prime256v1";
#endif
