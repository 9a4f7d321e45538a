/**
 * @peculiar/x509, loaded after the Reflect metadata polyfill its dependency
 * injection (tsyringe) needs. Import the library through this module only: ES
 * modules evaluate imports in order, and a module that imported
 * @peculiar/x509 before the polyfill would fail to load.
 */
import 'reflect-metadata';

export * from '@peculiar/x509';
