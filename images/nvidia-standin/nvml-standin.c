/*
 * gpuops NVIDIA stand-in: libnvidia-ml.so.1 for the local cloud's pods,
 * which have no GPU. NOT NVIDIA's NVML.
 *
 * It implements the NVML entry points that gpuops' GPU exporter (through
 * nvidia-ml-py) and the stand-in nvidia-smi call, with NVML's types, units
 * and return codes (nvml.h of the R570 driver): temperatures in C, power in
 * mW, energy in mJ, memory in bytes, clocks in MHz, utilisation in percent.
 * Every other NVML function is absent, so nvidia-ml-py raises
 * NVMLError_FunctionNotFound for it, as with an older driver.
 *
 * The values come from the stand-in driver (gpuops-nvidia-standin-driver),
 * which runs as root in the pod and rewrites its state file every second
 * (default /run/gpuops-nvidia-standin/state, or $GPUOPS_NVIDIA_STANDIN_STATE):
 *
 *   driver <version>
 *   cuda <version as NVML's int, e.g. 12080>
 *   gpu <index> <minor> <uuid> <bus id> <flags> <total B> <reserved B> <used B>
 *       <power limit mW> <power mW> <energy mJ> <temp C> <memory temp C>
 *       <util %> <memory util %> <sm MHz> <mem MHz> <max sm MHz> <max mem MHz> <name...>
 *
 * flags: 1 = data-centre GPU (HBM temperature, row remapping), 2 = NVLink.
 * No state file means no driver: nvmlInit fails with
 * NVML_ERROR_DRIVER_NOT_LOADED, as on a host without NVIDIA's driver.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    NVML_ERROR_UNKNOWN = 999,
};

enum { NVML_CLOCK_GRAPHICS = 0, NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2, NVML_CLOCK_VIDEO = 3 };
enum { NVML_TEMPERATURE_GPU = 0 };
enum {
    NVML_VALUE_TYPE_DOUBLE = 0,
    NVML_VALUE_TYPE_UNSIGNED_INT = 1,
    NVML_VALUE_TYPE_UNSIGNED_LONG = 2,
    NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = 3,
    NVML_VALUE_TYPE_SIGNED_LONG_LONG = 4,
    NVML_VALUE_TYPE_SIGNED_INT = 5,
};
#define NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL 66
#define NVML_FI_DEV_MEMORY_TEMP 82
#define NVML_EVENT_TYPE_XID_CRITICAL_ERROR 0x8ULL
#define NVML_MEMORY_V2_VERSION 0x02000028u

#define FLAG_DATACENTER 1u
#define FLAG_NVLINK 2u
#define MAX_GPUS 16

typedef struct {
    unsigned index, minor, flags;
    char uuid[96], bus_id[32], name[96];
    unsigned long long total, reserved, used, energy;
    unsigned power_limit, power, temp, mem_temp, util, mem_util, sm, mem, max_sm, max_mem;
} standin_gpu;

struct nvmlDevice_st { standin_gpu gpu; };
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } nvmlMemory_v2_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    signed long long sllVal;
    signed int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId, scopeId;
    long long timestamp, latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

typedef struct {
    nvmlDevice_t device;
    unsigned long long eventType, eventData;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;

struct nvmlEventSet_st { unsigned long long types[MAX_GPUS]; };
typedef struct nvmlEventSet_st *nvmlEventSet_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int init_count;
static unsigned gpu_count;
static struct nvmlDevice_st devices[MAX_GPUS];
static char driver_version[80];
static int cuda_version;
static struct timespec last_read;

static const char *state_path(void)
{
    const char *path = getenv("GPUOPS_NVIDIA_STANDIN_STATE");
    return path && *path ? path : "/run/gpuops-nvidia-standin/state";
}

/* Reads the driver's state file; with `only_values`, keeps the GPU list read at nvmlInit. */
static nvmlReturn_t read_state(int only_values)
{
    FILE *file = fopen(state_path(), "r");
    char line[512];
    unsigned count = 0;

    if (!file)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    while (fgets(line, sizeof line, file)) {
        standin_gpu gpu;
        int name_at = 0;
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "driver ", 7)) {
            if (!only_values)
                snprintf(driver_version, sizeof driver_version, "%.79s", line + 7);
            continue;
        }
        if (sscanf(line, "cuda %d", &cuda_version) == 1)
            continue;
        memset(&gpu, 0, sizeof gpu);
        if (sscanf(line, "gpu %u %u %95s %31s %u %llu %llu %llu %u %u %llu %u %u %u %u %u %u %u %u %n",
                   &gpu.index, &gpu.minor, gpu.uuid, gpu.bus_id, &gpu.flags, &gpu.total, &gpu.reserved,
                   &gpu.used, &gpu.power_limit, &gpu.power, &gpu.energy, &gpu.temp, &gpu.mem_temp, &gpu.util,
                   &gpu.mem_util, &gpu.sm, &gpu.mem, &gpu.max_sm, &gpu.max_mem, &name_at) < 19 || !name_at)
            continue;
        snprintf(gpu.name, sizeof gpu.name, "%.95s", line + name_at);
        if (gpu.index >= MAX_GPUS)
            continue;
        if (only_values && gpu.index >= gpu_count)
            continue;
        devices[gpu.index].gpu = gpu;
        if (gpu.index + 1 > count)
            count = gpu.index + 1;
    }
    fclose(file);
    if (!only_values)
        gpu_count = count;
    clock_gettime(CLOCK_MONOTONIC, &last_read);
    return NVML_SUCCESS;
}

/* Fresh values (the driver updates them every second), read at most every 200 ms. */
static void refresh(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - last_read.tv_sec) * 1000 + (now.tv_nsec - last_read.tv_nsec) / 1000000 >= 200)
        read_state(1);
}

/* Locks, checks the library is initialised and the handle is one of ours, refreshes. */
static nvmlReturn_t enter(nvmlDevice_t device)
{
    pthread_mutex_lock(&lock);
    if (!init_count) {
        pthread_mutex_unlock(&lock);
        return NVML_ERROR_UNINITIALIZED;
    }
    if (device && (device < devices || device >= devices + gpu_count)) {
        pthread_mutex_unlock(&lock);
        return NVML_ERROR_INVALID_ARGUMENT;
    }
    refresh();
    return NVML_SUCCESS;
}

#define ENTER(device)                            \
    do {                                         \
        nvmlReturn_t entered = enter(device);    \
        if (entered != NVML_SUCCESS)             \
            return entered;                      \
    } while (0)
#define LEAVE(result)                            \
    do {                                         \
        pthread_mutex_unlock(&lock);             \
        return (result);                         \
    } while (0)

static nvmlReturn_t copy_text(char *out, unsigned length, const char *text)
{
    if (!out)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, text, strlen(text) + 1);
    return NVML_SUCCESS;
}

/* ---- init, shutdown, errors, system ------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    nvmlReturn_t result = NVML_SUCCESS;
    (void)flags;
    pthread_mutex_lock(&lock);
    if (!init_count)
        result = read_state(0);
    if (result == NVML_SUCCESS)
        init_count++;
    pthread_mutex_unlock(&lock);
    return result;
}

EXPORT nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

EXPORT nvmlReturn_t nvmlShutdown(void)
{
    pthread_mutex_lock(&lock);
    if (!init_count) {
        pthread_mutex_unlock(&lock);
        return NVML_ERROR_UNINITIALIZED;
    }
    init_count--;
    pthread_mutex_unlock(&lock);
    return NVML_SUCCESS;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument Version Mismatch";
    default: return "Unknown Error";
    }
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    nvmlReturn_t result;
    ENTER(NULL);
    result = copy_text(version, length, driver_version);
    LEAVE(result);
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    char text[96];
    nvmlReturn_t result;
    ENTER(NULL);
    snprintf(text, sizeof text, "%d.%s", cuda_version / 1000, driver_version);
    result = copy_text(version, length, text);
    LEAVE(result);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *version)
{
    ENTER(NULL);
    if (!version)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *version = cuda_version;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *version) { return nvmlSystemGetCudaDriverVersion(version); }

/* ---- devices ------------------------------------------------------------------------------ */

EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    ENTER(NULL);
    if (!count)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *count = gpu_count;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *count) { return nvmlDeviceGetCount_v2(count); }

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    ENTER(NULL);
    if (!device || index >= gpu_count)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *device = &devices[index];
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

/* A getter: checks the handle and the output pointer, then runs `body` with `gpu` set. */
#define GETTER(signature, out, body)                     \
    EXPORT nvmlReturn_t signature                        \
    {                                                    \
        const standin_gpu *gpu;                          \
        ENTER(device);                                   \
        if (!device || !(out))                           \
            LEAVE(NVML_ERROR_INVALID_ARGUMENT);          \
        gpu = &device->gpu;                              \
        (void)gpu;                                       \
        body                                             \
    }

GETTER(nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index), index,
       *index = gpu->index; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minor), minor,
       *minor = gpu->minor; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length), name,
       LEAVE(copy_text(name, length, gpu->name));)

GETTER(nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length), uuid,
       LEAVE(copy_text(uuid, length, gpu->uuid));)

GETTER(nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci), pci,
       memset(pci, 0, sizeof *pci);
       sscanf(gpu->bus_id, "%x:%x:%x", &pci->domain, &pci->bus, &pci->device);
       snprintf(pci->busId, sizeof pci->busId, "%s", gpu->bus_id);
       snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.0", pci->domain & 0xffff, pci->bus,
                pci->device);
       pci->pciDeviceId = 0x000010de; /* NVIDIA's vendor id; no device id is claimed */
       LEAVE(NVML_SUCCESS);)

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

GETTER(nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, unsigned int *clock), clock,
       switch (type) {
       case NVML_CLOCK_GRAPHICS:
       case NVML_CLOCK_SM: *clock = gpu->sm; break;
       case NVML_CLOCK_MEM: *clock = gpu->mem; break;
       case NVML_CLOCK_VIDEO: *clock = gpu->sm * 9 / 10; break;
       default: LEAVE(NVML_ERROR_INVALID_ARGUMENT);
       }
       LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned int *clock), clock,
       switch (type) {
       case NVML_CLOCK_GRAPHICS:
       case NVML_CLOCK_SM: *clock = gpu->max_sm; break;
       case NVML_CLOCK_MEM: *clock = gpu->max_mem; break;
       case NVML_CLOCK_VIDEO: *clock = gpu->max_sm * 9 / 10; break;
       default: LEAVE(NVML_ERROR_INVALID_ARGUMENT);
       }
       LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetTemperature(nvmlDevice_t device, int sensor, unsigned int *temp), temp,
       if (sensor != NVML_TEMPERATURE_GPU) LEAVE(NVML_ERROR_INVALID_ARGUMENT);
       *temp = gpu->temp; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power), power,
       *power = gpu->power; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int *limit), limit,
       *limit = gpu->power_limit; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit), limit,
       *limit = gpu->power_limit; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy), energy,
       *energy = gpu->energy; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int *value), value,
       *value = 0; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *util), util,
       util->gpu = gpu->util; util->memory = gpu->mem_util; LEAVE(NVML_SUCCESS);)

/* No video engine ever runs here: 0 % over NVML's usual sampling period (in us). */
GETTER(nvmlDeviceGetEncoderUtilization(nvmlDevice_t device, unsigned int *util, unsigned int *period), util,
       *util = 0; if (period) *period = 167000; LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetDecoderUtilization(nvmlDevice_t device, unsigned int *util, unsigned int *period), util,
       *util = 0; if (period) *period = 167000; LEAVE(NVML_SUCCESS);)

/* v1 has no reserved field: NVML counts the reserved memory as used there. */
GETTER(nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory), memory,
       memory->total = gpu->total;
       memory->used = gpu->used + gpu->reserved;
       memory->free = gpu->total - memory->used;
       LEAVE(NVML_SUCCESS);)

GETTER(nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory), memory,
       if (memory->version != NVML_MEMORY_V2_VERSION) LEAVE(NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
       memory->total = gpu->total;
       memory->reserved = gpu->reserved;
       memory->used = gpu->used;
       memory->free = gpu->total - gpu->reserved - gpu->used;
       LEAVE(NVML_SUCCESS);)

/* Row remapping exists on data-centre GPUs only (A100 and later); none ever fails here. */
EXPORT nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int *corrected, unsigned int *uncorrected,
                                              unsigned int *pending, unsigned int *failure)
{
    ENTER(device);
    if (!device || !corrected || !uncorrected || !pending || !failure)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (!(device->gpu.flags & FLAG_DATACENTER))
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    *corrected = *uncorrected = *pending = *failure = 0;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int count, nvmlFieldValue_t *values)
{
    struct timespec now;
    const standin_gpu *gpu;
    int i;

    ENTER(device);
    if (!device || count < 0 || (count && !values))
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    gpu = &device->gpu;
    clock_gettime(CLOCK_REALTIME, &now);
    for (i = 0; i < count; i++) {
        nvmlFieldValue_t *value = &values[i];
        value->timestamp = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
        value->latencyUsec = 0;
        value->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
        memset(&value->value, 0, sizeof value->value);
        if (value->fieldId == NVML_FI_DEV_MEMORY_TEMP && (gpu->flags & FLAG_DATACENTER)) {
            value->value.uiVal = gpu->mem_temp;
            value->nvmlReturn = NVML_SUCCESS;
        } else if (value->fieldId == NVML_FI_DEV_NVLINK_BANDWIDTH_C0_TOTAL && (gpu->flags & FLAG_NVLINK)) {
            value->valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
            value->value.ullVal = 0; /* no peer GPU to talk to */
            value->nvmlReturn = NVML_SUCCESS;
        } else {
            value->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
        }
    }
    LEAVE(NVML_SUCCESS);
}

/* ---- events: XID errors can be waited for; a stand-in GPU never has one -------------------- */

EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set)
{
    ENTER(NULL);
    if (!set)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    *set = calloc(1, sizeof **set);
    LEAVE(*set ? NVML_SUCCESS : NVML_ERROR_UNKNOWN);
}

EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set)
{
    ENTER(device);
    if (!device || !set)
        LEAVE(NVML_ERROR_INVALID_ARGUMENT);
    if (types & ~NVML_EVENT_TYPE_XID_CRITICAL_ERROR)
        LEAVE(NVML_ERROR_NOT_SUPPORTED);
    set->types[device - devices] |= types;
    LEAVE(NVML_SUCCESS);
}

EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
    ENTER(NULL);
    pthread_mutex_unlock(&lock);
    if (!set || !data)
        return NVML_ERROR_INVALID_ARGUMENT;
    usleep((useconds_t)(timeout_ms > 60000 ? 60000 : timeout_ms) * 1000);
    return NVML_ERROR_TIMEOUT;
}

EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeout_ms)
{
    return nvmlEventSetWait_v2(set, data, timeout_ms);
}

EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set)
{
    free(set);
    return NVML_SUCCESS;
}
