/* ctl_domain.c: reading a libvirt domain definition with libxml2, keeping only what the lock manager sees. */
#include "ctl_domain.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

static void disk_clear(ctl_disk *disk)
{
    free(disk->type);
    free(disk->device);
    free(disk->target);
    free(disk->path);
    free(disk->source_text);
}

static void lease_clear(ctl_lease *lease)
{
    free(lease->lockspace);
    free(lease->key);
    free(lease->target_path);
    free(lease->offset);
}

void ctl_domain_free(ctl_domain *dom)
{
    if (dom == NULL)
        return;
    for (size_t i = 0; i < dom->ndisks; i++)
        disk_clear(&dom->disks[i]);
    for (size_t i = 0; i < dom->nleases; i++)
        lease_clear(&dom->leases[i]);
    free(dom->disks);
    free(dom->leases);
    free(dom->name);
    free(dom);
}

/* ---- small libxml2 helpers ---- */

static bool is_element(const xmlNode *node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && xmlStrcmp(node->name, (const xmlChar *)name) == 0;
}

/* The first child element called name, or NULL. */
static xmlNode *child_element(const xmlNode *parent, const char *name)
{
    for (xmlNode *child = parent->children; child != NULL; child = child->next) {
        if (is_element(child, name))
            return child;
    }
    return NULL;
}

/*
 * *out = a malloc'd copy (owned by the caller) of attribute name of node, NULL when absent
 * or empty (libvirt treats an empty source attribute as no source).
 */
static int attribute(xmlNode *node, const char *name, char **out, vml_error *err)
{
    xmlChar *value = node != NULL ? xmlGetProp(node, (const xmlChar *)name) : NULL;

    *out = NULL;
    if (value == NULL)
        return 0;
    if (value[0] != '\0')
        *out = strdup((const char *)value);
    if (value[0] != '\0' && *out == NULL) {
        xmlFree(value);
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot copy attribute '%s'", name);
        return -1;
    }
    xmlFree(value);
    return 0;
}

/* *out = the text of child element name of parent with surrounding blanks removed, or NULL. */
static int child_text(const xmlNode *parent, const char *name, char **out, vml_error *err)
{
    xmlNode *child = child_element(parent, name);
    xmlChar *content;
    const char *start;
    size_t len;

    *out = NULL;
    if (child == NULL)
        return 0;
    content = xmlNodeGetContent(child);
    if (content == NULL)
        return 0;
    start = (const char *)content;
    while (isspace((unsigned char)*start))
        start++;
    len = strlen(start);
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    *out = strndup(start, len);
    xmlFree(content);
    if (*out == NULL) {
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot copy <%s>", name);
        return -1;
    }
    return 0;
}

static int copy_or_default(char **field, const char *fallback, vml_error *err)
{
    if (*field != NULL)
        return 0;
    *field = strdup(fallback);
    if (*field == NULL) {
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot copy '%s'", fallback);
        return -1;
    }
    return 0;
}

/* libvirt's UUID spelling: 32 hex digits, '-' allowed between pairs, blanks around. */
static int parse_uuid(const char *text, unsigned char uuid[16])
{
    const char *p = text;
    size_t n = 0;

    while (isspace((unsigned char)*p))
        p++;
    while (n < 16) {
        int hi, lo;

        if (*p == '-') {
            p++;
            continue;
        }
        if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
            return -1;
        hi = isdigit((unsigned char)p[0]) ? p[0] - '0' : tolower((unsigned char)p[0]) - 'a' + 10;
        lo = isdigit((unsigned char)p[1]) ? p[1] - '0' : tolower((unsigned char)p[1]) - 'a' + 10;
        uuid[n++] = (unsigned char)(hi << 4 | lo);
        p += 2;
    }
    while (isspace((unsigned char)*p))
        p++;
    return *p == '\0' ? 0 : -1;
}

/* ---- disks and leases ---- */

/* The source attribute that holds the path libvirt locks, per disk type (NULL: none). */
static const char *path_attribute(const char *type)
{
    if (strcmp(type, "file") == 0)
        return "file";
    if (strcmp(type, "block") == 0)
        return "dev";
    if (strcmp(type, "dir") == 0)
        return "dir";
    return NULL;
}

/* For types whose source is not a path: a readable description of it (owned by the caller). */
static int describe_source(xmlNode *source, const char *type, char **out, vml_error *err)
{
    char *first = NULL;
    char *second = NULL;
    const char *a = NULL, *b = NULL, *sep = "";
    int ret = -1;

    *out = NULL;
    if (source == NULL)
        return 0;
    if (strcmp(type, "volume") == 0) {
        a = "pool";
        b = "volume";
        sep = "/";
    } else if (strcmp(type, "network") == 0) {
        a = "protocol";
        b = "name";
        sep = ":";
    } else {
        return 0;
    }
    if (attribute(source, a, &first, err) < 0 || attribute(source, b, &second, err) < 0)
        goto out;
    if (asprintf(out, "%s%s%s", first != NULL ? first : "", sep,
                 second != NULL ? second : "") < 0) {
        *out = NULL;
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot describe a disk source");
        goto out;
    }
    ret = 0;
 out:
    free(first);
    free(second);
    return ret;
}

static int parse_disk(xmlNode *node, ctl_disk *disk, vml_error *err)
{
    xmlNode *source = child_element(node, "source");
    const char *attr;

    disk->line = (unsigned int)xmlGetLineNo(node);
    disk->readonly = child_element(node, "readonly") != NULL;
    disk->shareable = child_element(node, "shareable") != NULL;
    if (attribute(node, "type", &disk->type, err) < 0 ||
        copy_or_default(&disk->type, "file", err) < 0 ||
        attribute(node, "device", &disk->device, err) < 0 ||
        copy_or_default(&disk->device, "disk", err) < 0 ||
        attribute(child_element(node, "target"), "dev", &disk->target, err) < 0)
        return -1;
    attr = path_attribute(disk->type);
    if (attr != NULL)
        return attribute(source, attr, &disk->path, err);
    return describe_source(source, disk->type, &disk->source_text, err);
}

static int parse_lease(xmlNode *node, ctl_lease *lease, vml_error *err)
{
    xmlNode *target = child_element(node, "target");

    lease->line = (unsigned int)xmlGetLineNo(node);
    if (child_text(node, "lockspace", &lease->lockspace, err) < 0 ||
        child_text(node, "key", &lease->key, err) < 0 ||
        attribute(target, "path", &lease->target_path, err) < 0 ||
        attribute(target, "offset", &lease->offset, err) < 0)
        return -1;
    return 0;
}

static int count_children(const xmlNode *devices, const char *name)
{
    int count = 0;

    for (xmlNode *child = devices != NULL ? devices->children : NULL; child != NULL;
         child = child->next) {
        if (is_element(child, name))
            count++;
    }
    return count;
}

static int parse_domain(const char *filename, xmlNode *root, ctl_domain *dom, vml_error *err)
{
    xmlNode *devices;
    char *uuid_text = NULL;
    int ret = -1;

    if (!is_element(root, "domain")) {
        vml_error_set(err, VIR_FROM_DOMAIN, VIR_ERR_XML_DETAIL,
                      "%s:%ld: the root element is <%s>, not <domain>: not a libvirt domain "
                      "definition", filename, xmlGetLineNo(root), (const char *)root->name);
        goto out;
    }
    if (child_text(root, "name", &dom->name, err) < 0 || child_text(root, "uuid", &uuid_text, err) < 0)
        goto out;
    if (dom->name == NULL || dom->name[0] == '\0') {
        vml_error_set(err, VIR_FROM_DOMAIN, VIR_ERR_XML_DETAIL,
                      "%s: the domain has no <name>: libvirt refuses such a definition", filename);
        goto out;
    }
    if (uuid_text != NULL) {
        if (parse_uuid(uuid_text, dom->uuid) < 0) {
            vml_error_set(err, VIR_FROM_DOMAIN, VIR_ERR_XML_DETAIL,
                          "%s:%ld: <uuid> '%s' is not a UUID (32 hex digits)", filename,
                          xmlGetLineNo(child_element(root, "uuid")), uuid_text);
            goto out;
        }
        dom->has_uuid = true;
    }

    devices = child_element(root, "devices");
    dom->disks = calloc((size_t)count_children(devices, "disk") + 1, sizeof(*dom->disks));
    dom->leases = calloc((size_t)count_children(devices, "lease") + 1, sizeof(*dom->leases));
    if (dom->disks == NULL || dom->leases == NULL) {
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot store the domain's devices");
        goto out;
    }
    for (xmlNode *child = devices != NULL ? devices->children : NULL; child != NULL;
         child = child->next) {
        if (is_element(child, "disk")) {
            /* counted before use: a disk that fails to parse is still freed */
            if (parse_disk(child, &dom->disks[dom->ndisks++], err) < 0)
                goto out;
        } else if (is_element(child, "lease")) {
            if (parse_lease(child, &dom->leases[dom->nleases++], err) < 0)
                goto out;
        }
    }
    ret = 0;
 out:
    free(uuid_text);
    return ret;
}

/* libxml2's encoding layer reports a bad byte sequence without a parser context, through
 * the generic handler (stderr by default): the parse then fails and its error, which is
 * what the user is told, comes through the context.  The context-less lines are dropped. */
static void drop_generic_error(void *opaque, const char *fmt, ...)
{
    (void)opaque;
    (void)fmt;
}

int ctl_domain_parse_text(const char *filename, const char *text, size_t len,
                          ctl_domain **out, vml_error *err)
{
    xmlParserCtxt *ctxt = NULL;
    xmlDoc *doc = NULL;
    ctl_domain *dom = NULL;
    int ret = -1;

    if (len > CTL_DOMAIN_XML_MAX) {
        vml_error_set(err, VIR_FROM_DOMAIN, VIR_ERR_XML_ERROR,
                      "%s: %zu bytes is too large for a domain definition (at most %d)",
                      filename, len, CTL_DOMAIN_XML_MAX);
        goto out;
    }
    ctxt = xmlNewParserCtxt();
    dom = calloc(1, sizeof(*dom));
    if (ctxt == NULL || dom == NULL) {
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot parse %s", filename);
        goto out;
    }
    xmlSetGenericErrorFunc(NULL, drop_generic_error);
    /* NONET: never fetch anything; without NOENT/DTDLOAD no entity is loaded or expanded. */
    doc = xmlCtxtReadMemory(ctxt, text, (int)len, filename, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL || xmlDocGetRootElement(doc) == NULL) {
        const xmlError *xerr = xmlCtxtGetLastError(ctxt);
        char message[512] = "empty document";

        if (xerr != NULL && xerr->message != NULL) {
            snprintf(message, sizeof(message), "%s", xerr->message);
            message[strcspn(message, "\n")] = '\0';
        }
        vml_error_set(err, VIR_FROM_DOMAIN, VIR_ERR_XML_ERROR, "%s:%d: malformed XML: %s",
                      filename, xerr != NULL ? xerr->line : 0, message);
        goto out;
    }
    if (parse_domain(filename, xmlDocGetRootElement(doc), dom, err) < 0)
        goto out;
    *out = dom;
    dom = NULL;
    ret = 0;
 out:
    ctl_domain_free(dom);
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return ret;
}

int ctl_domain_parse_file(const char *path, ctl_domain **out, vml_error *err)
{
    bool use_stdin = strcmp(path, "-") == 0;
    const char *name = use_stdin ? "(standard input)" : path;
    char *text = NULL;
    size_t len = 0;
    int fd = -1;
    int ret = -1;

    fd = use_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        vml_error_set_errno(err, VIR_FROM_DOMAIN, errno, "cannot open domain definition %s",
                            path);
        goto out;
    }
    /* Read one byte past the limit to tell "exactly the limit" from "too large". */
    text = malloc(CTL_DOMAIN_XML_MAX + 1);
    if (text == NULL) {
        vml_error_set_errno(err, VIR_FROM_DOMAIN, ENOMEM, "cannot read %s", name);
        goto out;
    }
    while (len <= CTL_DOMAIN_XML_MAX) {
        ssize_t n = read(fd, text + len, CTL_DOMAIN_XML_MAX + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            vml_error_set_errno(err, VIR_FROM_DOMAIN, errno, "cannot read %s", name);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CTL_DOMAIN_XML_MAX) {
        vml_error_set(err, VIR_FROM_DOMAIN, VIR_ERR_XML_ERROR,
                      "%s is larger than %d bytes: not a domain definition", name,
                      CTL_DOMAIN_XML_MAX);
        goto out;
    }
    ret = ctl_domain_parse_text(name, text, len, out, err);
 out:
    if (fd >= 0 && !use_stdin)
        close(fd);
    free(text);
    return ret;
}
